//! `gp100emu decode`: JSON on stdout, exit 0; bad input a one-line error and exit 2.

use std::process::Command;

fn decode(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gp100emu"))
        .arg("decode")
        .args(args)
        .output()
        .expect("starting gp100emu");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn pte_pde_fault_as_json() {
    let (code, out, _) = decode(&["pte", "0x123450d"]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["aperture"], "sys_coherent");
    assert_eq!(v["address"], "0x12345000");
    let (code, out, _) = decode(&["pde", "0", "0x1232"]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["small"]["address"], "0x12000");
    let entry = format!("{}{}", "00".repeat(28), "02000180");
    let (code, out, _) = decode(&["fault", &entry]);
    assert_eq!(code, Some(0), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["fault_type"], "pte");
}

#[test]
fn bad_input_exits_2_with_one_line() {
    for args in [
        &["pte", "nothex"][..],
        &["pde", "1", "zz"],
        &["fault", "00"],
    ] {
        let (code, out, err) = decode(args);
        assert_eq!(code, Some(2), "{args:?}");
        assert!(out.is_empty());
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}
