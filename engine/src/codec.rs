//! Encoding of values stored in RocksDB: one version byte followed by the
//! `bincode` 2 (serde) encoding. The version byte lets a later release read old
//! records or refuse them with a clear error instead of misreading bytes.

use serde::{de::DeserializeOwned, Serialize};

/// Version of the record encoding written by this build.
const RECORD_VERSION: u8 = 1;

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_variable_int_encoding()
}

/// Encodes a value with the version byte in front.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![RECORD_VERSION];
    // Encoding plain data structs into a Vec cannot fail.
    let body = bincode::serde::encode_to_vec(value, config()).expect("bincode encoding to a Vec");
    out.extend_from_slice(&body);
    out
}

/// Decodes a value written by [`encode`]; the error says what is wrong.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match bytes.first() {
        None => Err("empty record".into()),
        Some(&RECORD_VERSION) => {
            let (value, used) = bincode::serde::decode_from_slice(&bytes[1..], config())
                .map_err(|e| format!("undecodable record: {e}"))?;
            if used + 1 != bytes.len() {
                return Err(format!(
                    "record has {} trailing bytes",
                    bytes.len() - used - 1
                ));
            }
            Ok(value)
        }
        Some(v) => Err(format!(
            "record format version {v} is not supported (this build reads version {RECORD_VERSION})"
        )),
    }
}
