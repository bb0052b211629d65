//! Human-facing decoders behind `gp100emu decode`: kernel developers paste PTE, PDE and
//! fault-buffer values from dmesg or a hexdump and get every field as one JSON object.

use serde_json::{json, Value};

use crate::fault::FaultEntry;
use crate::mmu::{DualPde, Pde, Pte};

/// Bad input: a one-line message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Not a hexadecimal number of the right size.
    #[error("{what}: '{input}' is not {expected}")]
    BadHex {
        /// Which value.
        what: &'static str,
        /// What was given.
        input: String,
        /// What is wanted.
        expected: &'static str,
    },
}

/// The input as an error message shows it: control characters escaped (a pasted escape
/// sequence must not reach the terminal), at most 80 characters.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(80).flat_map(char::escape_debug).collect();
    if s.chars().count() > 80 {
        out.push_str("...");
    }
    out
}

fn parse_u64(what: &'static str, s: &str) -> Result<u64, DecodeError> {
    let t = s.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let t: String = t.chars().filter(|&c| c != '_').collect();
    if t.is_empty() || t.len() > 16 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DecodeError::BadHex {
            what,
            input: shown(s),
            expected: "a 64-bit hexadecimal value (up to 16 hex digits, 0x optional)",
        });
    }
    Ok(u64::from_str_radix(&t, 16).expect("checked hex of at most 16 digits"))
}

/// `gp100emu decode pte HEX`.
pub fn decode_pte(s: &str) -> Result<Value, DecodeError> {
    let raw = parse_u64("pte", s)?;
    let mut v = serde_json::to_value(Pte(raw).fields()).expect("plain struct");
    v["raw"] = json!(format!("{raw:#018x}"));
    Ok(v)
}

fn pde_json(p: Pde) -> Value {
    json!({
        "valid": p.valid(),
        "aperture": p.aperture(),
        "vol": p.vol(),
        "address": format!("{:#x}", p.address()),
    })
}

/// `gp100emu decode pde LO [HI]`: one value is an 8-byte PDE of PD3, PD2 or PD1; two values
/// are a 16-byte PD0 entry, bits 63:0 (big-page table, or a 2 MiB PTE) then bits 127:64
/// (small-page table).
pub fn decode_pde(lo: &str, hi: Option<&str>) -> Result<Value, DecodeError> {
    let lo_v = parse_u64("pde", lo)?;
    let Some(hi) = hi else {
        let mut v = pde_json(Pde(lo_v));
        v["raw"] = json!(format!("{lo_v:#018x}"));
        return Ok(v);
    };
    let hi_v = parse_u64("pde high word", hi)?;
    let d = DualPde { lo: lo_v, hi: hi_v };
    let mut v = if d.is_pte() {
        let mut p = serde_json::to_value(d.as_pte().fields()).expect("plain struct");
        p["page_size"] = json!("2MiB");
        json!({ "is_pte": true, "pte": p })
    } else {
        json!({
            "is_pte": false,
            "big": {
                "valid": d.big_aperture() != crate::mmu::PdeAperture::Invalid,
                "aperture": d.big_aperture(),
                "vol": d.big_vol(),
                "address": format!("{:#x}", d.big_address()),
            },
            "small": pde_json(d.small()),
        })
    };
    v["raw"] = json!(format!("{hi_v:016x}{lo_v:016x}"));
    Ok(v)
}

/// `gp100emu decode fault HEX64`: the 32 bytes of a fault-buffer entry in memory order
/// (byte 0 first, as `xxd -p` or `hexdump` print them).
pub fn decode_fault(s: &str) -> Result<Value, DecodeError> {
    let t = s.trim();
    let t: String = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t)
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '_')
        .collect();
    if t.len() != 64 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DecodeError::BadHex {
            what: "fault",
            input: shown(s),
            expected: "64 hex digits (the 32 bytes of an entry, byte 0 first)",
        });
    }
    let mut b = [0u8; 32];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).expect("checked hex");
    }
    Ok(serde_json::to_value(FaultEntry::decode(&b)).expect("plain struct"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::{AccessType, FaultType};

    #[test]
    fn pte_json_fields() {
        // A PFN-map PTE for a read-only system page at 0x1234_5000.
        let raw = (0x1234_5000u64 >> 4) | (2 << 1) | (1 << 3) | 1 | (1 << 6);
        let v = decode_pte(&format!("{raw:#x}")).unwrap();
        assert_eq!(v["valid"], true);
        assert_eq!(v["aperture"], "sys_coherent");
        assert_eq!(v["vol"], true);
        assert_eq!(v["priv"], false);
        assert_eq!(v["read_only"], true);
        assert_eq!(v["atomic_disable"], false);
        assert_eq!(v["address"], "0x12345000");
        assert_eq!(v["kind"], 0);
        let v = decode_pte("0").unwrap();
        assert_eq!(v["aperture"], "video");
        assert_eq!(v["valid"], false);
    }

    #[test]
    fn pde_json_single_and_dual() {
        let v = decode_pde("0x20002", None).unwrap();
        assert_eq!(v["aperture"], "video");
        assert_eq!(v["address"], "0x200000");
        let v = decode_pde("0", Some("0x1232")).unwrap();
        assert_eq!(v["is_pte"], false);
        assert_eq!(v["big"]["aperture"], "invalid");
        assert_eq!(v["small"]["aperture"], "video");
        assert_eq!(v["small"]["address"], "0x12000");
        let v = decode_pde("0x20000009", Some("0")).unwrap();
        assert_eq!(v["is_pte"], true);
        assert_eq!(v["pte"]["page_size"], "2MiB");
    }

    #[test]
    fn fault_json_fields() {
        let e = FaultEntry {
            inst: 0x1000,
            inst_aperture: 0,
            addr: 0x7f00_0000_1000,
            timestamp: 42,
            engine: 0x40,
            valid: true,
            gpc: 1,
            hub: false,
            access: AccessType::Read,
            client: 3,
            fault_type: FaultType::Pte,
        };
        let hex: String = e.encode().iter().map(|b| format!("{b:02x}")).collect();
        let v = decode_fault(&hex).unwrap();
        for k in [
            "inst",
            "addr",
            "timestamp",
            "engine",
            "valid",
            "gpc",
            "hub",
            "access",
            "client",
            "fault_type",
        ] {
            assert!(v.get(k).is_some(), "{k} missing in {v}");
        }
        assert_eq!(v["addr"], "0x7f0000001000");
        assert_eq!(v["fault_type"], "pte");
        assert_eq!(v["access"], "read");
        assert_eq!(v["timestamp"], 42);
    }

    #[test]
    fn bad_input_is_one_line() {
        for bad in ["", "xyz", "0x", "1_0000_0000_0000_0000_0"] {
            let e = decode_pte(bad).unwrap_err();
            assert!(!e.to_string().contains('\n'));
        }
        assert!(decode_pde("1", Some("zz")).is_err());
        assert!(decode_fault("00").is_err());
        assert!(decode_fault(&"g".repeat(64)).is_err());
    }

    /// Issue 14: `decode fault` took `0x0x...` (every leading 0x was stripped) and errors
    /// echoed control characters to the terminal.
    #[test]
    fn one_prefix_only_and_no_control_characters_echoed() {
        let hex = "00".repeat(32);
        assert!(decode_fault(&format!("0x{hex}")).is_ok());
        assert!(decode_fault(&format!("0x0x{hex}")).is_err());
        assert!(decode_pte("0x0x12").is_err());
        for bad in ["\x1b[2J\x07", "a\nb", "\u{9b}31m"] {
            for e in [decode_pte(bad), decode_fault(bad), decode_pde(bad, None)] {
                let m = e.unwrap_err().to_string();
                assert!(!m.chars().any(char::is_control), "{m:?}");
            }
        }
        let long = "z".repeat(500);
        assert!(decode_pte(&long).unwrap_err().to_string().len() < 300);
    }
}
