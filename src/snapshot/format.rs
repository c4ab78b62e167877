//! The snapshot format, byte by byte, and the codecs for its parts.
//!
//! ```text
//! snapshot := preamble header block* end
//! preamble := MAGIC (8 bytes) | format version (u16, little-endian)
//! header   := frame 'H': scheme name, key type, value type, shard count,
//!             records when it began, when it was taken (seconds, nanoseconds)
//! block    := frame 'B': resume point so far, then `count` records
//! end      := frame 'E': records, blocks, resume point
//! frame    := tag (u8) | count (u32 LE) | length (u32 LE) | CRC-32 of the three (u32 LE)
//!             | body (`length` bytes) | CRC-32 of the body (u32 LE)
//! record   := flags (u8: bit 0 expires, bit 1 idle, bits 2-4 heat, the rest 0)
//!             | key | value | version as its text | [nanos to expiry] | [nanos to idle]
//! ```
//!
//! Bodies are postcard: integers as LEB128 varints, strings with a varint length, keys
//! and values as their `Serialize` implementations write them. A version is written as
//! the text its `Display` writes and read back with the scheme's `parse` (the form
//! clients see as entity tags), so every scheme can be snapshotted; a resume point is an
//! optional version text.
//!
//! Every byte is checked: the magic and the format version by value, a frame's fixed
//! head by its own CRC before its length is trusted, and its body by another. So a
//! single flipped bit anywhere is always refused, and a cut anywhere is found by a
//! frame that does not end.

use std::fmt::{Display, Write as _};
use std::io::{self, Read, Write};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{Part, RestoreError, SnapshotError};
use super::preamble::{FORMAT_VERSION, MAGIC};
use crate::store::parts::expiry::Remaining;
use crate::version::VersionScheme;

/// A frame's tag, count, length and head checksum.
const FRAME_HEAD: usize = 13;

/// The tag of the header frame.
pub(crate) const HEADER: u8 = b'H';
/// The tag of a block of records.
pub(crate) const BLOCK: u8 = b'B';
/// The tag of the end marker.
pub(crate) const END: u8 = b'E';

/// The size at which a block is closed: big enough that its head and checksums cost
/// nothing, small enough that a lenient restore loses little to one bad block.
pub(crate) const BLOCK_TARGET: usize = 64 * 1024;

/// The flag bits of a record that say what follows the version.
const EXPIRES: u8 = 1;
const IDLE: u8 = 2;
/// Where the heat sits in the flags, and its mask.
const HEAT_SHIFT: u8 = 2;
const HEAT_MASK: u8 = 7;

/// Writes frames to `out`, counting the bytes.
pub(crate) struct FrameWriter<W> {
    out: W,
    written: u64,
}

impl<W: Write> FrameWriter<W> {
    pub(crate) fn new(out: W) -> Self {
        FrameWriter { out, written: 0 }
    }

    /// Bytes written so far.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        self.out
            .write_all(bytes)
            .map_err(|error| SnapshotError::Write {
                written: self.written,
                error,
            })?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    pub(crate) fn preamble(&mut self) -> Result<(), SnapshotError> {
        self.put(&MAGIC)?;
        self.put(&FORMAT_VERSION.to_le_bytes())
    }

    /// Writes one frame whose body is `parts`, one after the other; their total length
    /// must fit in a `u32` (the caller checks).
    pub(crate) fn frame(
        &mut self,
        tag: u8,
        count: u32,
        parts: &[&[u8]],
    ) -> Result<(), SnapshotError> {
        let length: usize = parts.iter().map(|part| part.len()).sum();
        let length = u32::try_from(length).expect("the caller keeps a body under 4 GiB");
        let mut head = [0; FRAME_HEAD];
        head[0] = tag;
        head[1..5].copy_from_slice(&count.to_le_bytes());
        head[5..9].copy_from_slice(&length.to_le_bytes());
        let head_crc = crc32fast::hash(&head[..9]);
        head[9..].copy_from_slice(&head_crc.to_le_bytes());
        self.put(&head)?;
        let mut body_crc = crc32fast::Hasher::new();
        for part in parts {
            body_crc.update(part);
            self.put(part)?;
        }
        self.put(&body_crc.finalize().to_le_bytes())
    }

    pub(crate) fn flush(&mut self) -> Result<(), SnapshotError> {
        self.out.flush().map_err(|error| SnapshotError::Write {
            written: self.written,
            error,
        })
    }
}

/// A frame's head, as read.
pub(crate) struct FrameHead {
    pub(crate) tag: u8,
    pub(crate) count: u32,
    /// Where the frame starts.
    pub(crate) at: u64,
    /// Where its body starts.
    pub(crate) body_at: u64,
}

/// Reads frames from `input`, counting the bytes.
pub(crate) struct FrameReader<R> {
    input: R,
    at: u64,
}

impl<R: Read> FrameReader<R> {
    pub(crate) fn new(input: R) -> Self {
        FrameReader { input, at: 0 }
    }

    /// Bytes read so far.
    pub(crate) fn at(&self) -> u64 {
        self.at
    }

    /// Fills `buf`, or says where the input ended. Returns how much it read if the input
    /// ended first (so the caller can tell a foreign file from a short one).
    fn fill(&mut self, buf: &mut [u8], part: Part) -> Result<usize, RestoreError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.input.read(&mut buf[filled..]) {
                Ok(0) => return Ok(filled),
                Ok(n) => {
                    filled += n;
                    self.at += n as u64;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    return Err(RestoreError::Io {
                        at: self.at,
                        part,
                        error,
                    })
                }
            }
        }
        Ok(filled)
    }

    fn exact(&mut self, buf: &mut [u8], part: Part) -> Result<(), RestoreError> {
        if self.fill(buf, part)? < buf.len() {
            return Err(RestoreError::Truncated { at: self.at, part });
        }
        Ok(())
    }

    /// Reads and checks the magic bytes and the format version.
    pub(crate) fn preamble(&mut self) -> Result<(), RestoreError> {
        let mut magic = [0; MAGIC.len()];
        let got = self.fill(&mut magic, Part::Preamble)?;
        if magic[..got] != MAGIC[..got] {
            return Err(RestoreError::Foreign {
                found: magic[..got].to_vec(),
            });
        }
        if got < MAGIC.len() {
            return Err(RestoreError::Truncated {
                at: self.at,
                part: Part::Preamble,
            });
        }
        let mut format = [0; 2];
        self.exact(&mut format, Part::Preamble)?;
        let found = u16::from_le_bytes(format);
        if found != FORMAT_VERSION {
            return Err(RestoreError::Format { found });
        }
        Ok(())
    }

    /// Reads one frame into `body` (cleared first), checking both checksums.
    pub(crate) fn frame(
        &mut self,
        part: Part,
        body: &mut Vec<u8>,
    ) -> Result<FrameHead, RestoreError> {
        let at = self.at;
        let mut head = [0; FRAME_HEAD];
        self.exact(&mut head, part)?;
        let crc = u32::from_le_bytes([head[9], head[10], head[11], head[12]]);
        if crc32fast::hash(&head[..9]) != crc {
            return Err(RestoreError::Checksum { at, part });
        }
        let tag = head[0];
        let part = match (part, tag) {
            (Part::Block(_), END) => Part::End,
            (part, _) => part,
        };
        let count = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
        let length = u32::from_le_bytes([head[5], head[6], head[7], head[8]]);
        let body_at = self.at;
        body.clear();
        // Grows with what arrives: a length that lies allocates no more than is there.
        let got = (&mut self.input)
            .take(u64::from(length))
            .read_to_end(body)
            .map_err(|error| RestoreError::Io {
                at: body_at + body.len() as u64,
                part,
                error,
            })?;
        self.at += got as u64;
        if got < length as usize {
            return Err(RestoreError::Truncated { at: self.at, part });
        }
        let mut crc = [0; 4];
        self.exact(&mut crc, part)?;
        if crc32fast::hash(body) != u32::from_le_bytes(crc) {
            return Err(RestoreError::Checksum { at: body_at, part });
        }
        Ok(FrameHead {
            tag,
            count,
            at,
            body_at,
        })
    }
}

/// Appends `value` to `out` in postcard.
pub(crate) fn put<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), String> {
    let taken = std::mem::take(out);
    *out = postcard::to_extend(value, taken).map_err(|error| error.to_string())?;
    Ok(())
}

/// Takes one postcard value off the front of `bytes`.
fn take<'a, T: serde::Deserialize<'a>>(bytes: &mut &'a [u8]) -> Result<T, postcard::Error> {
    let (value, rest) = postcard::take_from_bytes(bytes)?;
    *bytes = rest;
    Ok(value)
}

/// `duration` in nanoseconds, saturating (585 years and more read as never ending).
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// What the header says.
pub(crate) struct Header {
    pub(crate) scheme: String,
    pub(crate) key_type: String,
    pub(crate) value_type: String,
    /// When the snapshot began, since the Unix epoch.
    pub(crate) taken_at: Duration,
}

/// The header's body.
pub(crate) fn encode_header<K, V, S: VersionScheme>(
    shards: usize,
    records: usize,
    taken_at: Duration,
) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let fields = (
        S::name(),
        std::any::type_name::<K>(),
        std::any::type_name::<V>(),
        shards as u64,
        records as u64,
        taken_at.as_secs(),
        taken_at.subsec_nanos(),
    );
    put(&mut body, &fields)?;
    Ok(body)
}

pub(crate) fn decode_header(mut body: &[u8]) -> Result<Header, String> {
    let (scheme, key_type, value_type, _shards, _records, secs, subsec): (
        &str,
        &str,
        &str,
        u64,
        u64,
        u64,
        u32,
    ) = take(&mut body).map_err(|error| format!("the fields do not decode: {error}"))?;
    if !body.is_empty() {
        return Err(format!("{} bytes after the fields", body.len()));
    }
    if subsec >= 1_000_000_000 {
        return Err(format!(
            "the time taken has {subsec} nanoseconds past a second"
        ));
    }
    Ok(Header {
        scheme: scheme.to_owned(),
        key_type: key_type.to_owned(),
        value_type: value_type.to_owned(),
        taken_at: Duration::new(secs, subsec),
    })
}

/// Writes `version` as its text into `text` (cleared first).
fn version_text<Ver: Display>(text: &mut String, version: &Ver) {
    text.clear();
    let _ = write!(text, "{version}");
}

/// Appends a resume point to `out`: `None`, or the version's text.
pub(crate) fn put_resume<Ver: Display>(
    out: &mut Vec<u8>,
    text: &mut String,
    point: Option<&Ver>,
) -> Result<(), String> {
    match point {
        None => put(out, &None::<&str>),
        Some(version) => {
            version_text(text, version);
            put(out, &Some(text.as_str()))
        }
    }
}

/// Takes a resume point off the front of `bytes`.
pub(crate) fn take_resume<S: VersionScheme>(
    bytes: &mut &[u8],
) -> Result<Option<S::Version>, String> {
    let text: Option<&str> =
        take(bytes).map_err(|error| format!("the resume point does not decode: {error}"))?;
    text.map(|text| {
        S::parse(text).ok_or_else(|| {
            format!(
                "the resume point {text:?} is not a version of the {} scheme",
                S::name()
            )
        })
    })
    .transpose()
}

/// The end marker's body.
pub(crate) fn encode_end<Ver: Display>(
    records: u64,
    blocks: u64,
    resume: Option<&Ver>,
) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    put(&mut body, &(records, blocks))?;
    put_resume(&mut body, &mut String::new(), resume)?;
    Ok(body)
}

/// What the end marker says: records, blocks, resume point.
pub(crate) fn decode_end<S: VersionScheme>(
    mut body: &[u8],
) -> Result<(u64, u64, Option<S::Version>), String> {
    let (records, blocks): (u64, u64) =
        take(&mut body).map_err(|error| format!("the counts do not decode: {error}"))?;
    let resume = take_resume::<S>(&mut body)?;
    if !body.is_empty() {
        return Err(format!("{} bytes after the resume point", body.len()));
    }
    Ok((records, blocks, resume))
}

/// One record as a snapshot holds it.
pub(crate) struct Entry<K, V, Ver> {
    pub(crate) key: K,
    pub(crate) value: V,
    pub(crate) version: Ver,
    pub(crate) remaining: Remaining,
    /// Its standing in a bounded store's eviction policy (`Access::heat`): 0 to 7.
    pub(crate) heat: u8,
}

/// Appends a record to `out`; `text` is scratch space for the version's text.
pub(crate) fn encode_record<K: Serialize, V: Serialize, Ver: Display>(
    out: &mut Vec<u8>,
    text: &mut String,
    entry: &Entry<K, V, Ver>,
) -> Result<(), String> {
    let Remaining { expires, idle } = entry.remaining;
    let mut flags = (entry.heat & HEAT_MASK) << HEAT_SHIFT;
    if expires.is_some() {
        flags |= EXPIRES;
    }
    if idle.is_some() {
        flags |= IDLE;
    }
    out.push(flags);
    put(out, &entry.key).map_err(|error| format!("the key: {error}"))?;
    put(out, &entry.value).map_err(|error| format!("the value: {error}"))?;
    version_text(text, &entry.version);
    put(out, text.as_str())?;
    for limit in [expires, idle].into_iter().flatten() {
        put(out, &nanos(limit))?;
    }
    Ok(())
}

/// Takes a record off the front of `bytes`; the error says what does not decode.
pub(crate) fn decode_record<K: DeserializeOwned, V: DeserializeOwned, S: VersionScheme>(
    bytes: &mut &[u8],
) -> Result<Entry<K, V, S::Version>, String> {
    let (&flags, rest) = bytes
        .split_first()
        .ok_or_else(|| "it is missing".to_string())?;
    *bytes = rest;
    if flags & !(EXPIRES | IDLE | HEAT_MASK << HEAT_SHIFT) != 0 {
        return Err(format!("its flags {flags:#04x} have unknown bits set"));
    }
    let key = take(bytes).map_err(|error| format!("the key does not decode: {error}"))?;
    let value = take(bytes).map_err(|error| format!("the value does not decode: {error}"))?;
    let text: &str =
        take(bytes).map_err(|error| format!("the version does not decode: {error}"))?;
    let version = S::parse(text).ok_or_else(|| {
        format!(
            "the version {text:?} is not a version of the {} scheme",
            S::name()
        )
    })?;
    let mut limit = |flag: u8, what: &str| -> Result<Option<Duration>, String> {
        if flags & flag == 0 {
            return Ok(None);
        }
        let nanos: u64 =
            take(bytes).map_err(|error| format!("the time to {what} does not decode: {error}"))?;
        Ok(Some(Duration::from_nanos(nanos)))
    };
    let expires = limit(EXPIRES, "expiry")?;
    let idle = limit(IDLE, "idle expiry")?;
    Ok(Entry {
        key,
        value,
        version,
        remaining: Remaining { expires, idle },
        heat: flags >> HEAT_SHIFT & HEAT_MASK,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::Counter;

    #[test]
    fn a_record_round_trips_with_its_limits_and_heat() {
        let entry = Entry {
            key: "key".to_string(),
            value: vec![1u8, 2, 3],
            version: 42u64,
            remaining: Remaining {
                expires: Some(Duration::from_secs(5)),
                idle: None,
            },
            heat: 6,
        };
        let mut out = Vec::new();
        encode_record(&mut out, &mut String::new(), &entry).unwrap();
        let mut bytes = &out[..];
        let back = decode_record::<String, Vec<u8>, Counter>(&mut bytes).unwrap();
        assert!(bytes.is_empty());
        assert_eq!(
            (
                back.key,
                back.value,
                back.version,
                back.remaining,
                back.heat
            ),
            (
                entry.key,
                entry.value,
                entry.version,
                entry.remaining,
                entry.heat
            )
        );
    }

    #[test]
    fn a_record_with_unknown_flags_or_a_bad_version_is_refused() {
        let mut out = vec![0x80];
        put(&mut out, &1u64).unwrap();
        let error = decode_record::<u64, u64, Counter>(&mut &out[..])
            .err()
            .unwrap();
        assert_eq!(error, "its flags 0x80 have unknown bits set");

        let mut out = vec![0];
        put(&mut out, &1u64).unwrap();
        put(&mut out, &2u64).unwrap();
        put(&mut out, "007").unwrap();
        let error = decode_record::<u64, u64, Counter>(&mut &out[..])
            .err()
            .unwrap();
        assert_eq!(
            error,
            "the version \"007\" is not a version of the counter scheme"
        );
    }

    #[test]
    fn a_frame_round_trips_and_a_flipped_bit_anywhere_is_caught() {
        let mut bytes = Vec::new();
        let mut writer = FrameWriter::new(&mut bytes);
        writer.frame(BLOCK, 2, &[b"ab", b"cde"]).unwrap();
        let mut body = Vec::new();
        let head = FrameReader::new(&bytes[..])
            .frame(Part::Block(0), &mut body)
            .unwrap();
        assert_eq!((head.tag, head.count, &body[..]), (BLOCK, 2, &b"abcde"[..]));
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let read = FrameReader::new(&flipped[..]).frame(Part::Block(0), &mut body);
            assert!(read.is_err(), "bit {bit}");
        }
    }
}
