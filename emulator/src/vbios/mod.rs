//! Our synthetic VBIOS: a 4 KiB image generated from our own description, holding exactly the
//! structures nouveau 6.12 reads on the GP100 path, with every value chosen by us (none copied
//! from a real board). The layout and the requirements are in docs/probe-plan.md §2.3, drawn
//! from nouveau's `nvkm/subdev/bios/` (`image.c`, `pcir.c`, `bit.c`, `pmu.c`, `rammap.c`,
//! `dcb.c`) and `nouveau_bios.c` (`parse_bit_i_tbl_entry`, `parse_bit_init_tbl_entry`):
//!
//! | offset | what |
//! | --- | --- |
//! | 0x000 | 0x55 0xAA, size/512 at +2, PCIR pointer at +0x18, DCB pointer at +0x36 |
//! | 0x080 | PCIR: vendor 10de, device 15f8, class 030200, length 8×512, code type 0 (x86), last image |
//! | 0x100 | BIT header `FF B8 'B' 'I' 'T'`, entries 'i', 'I', 'p', 'P', 'M' (6 bytes each) |
//! | 0x200.. | the tables the entries point at: 'i' (version), 'I' (init pointers, all empty), 'p' → PMU table with a DEVINIT (type 4) and a PRE_OS (type 1) app header, 'P' → rammap table v0x10 with no entries, a DCB 4.1 header with no outputs, 'M' → the M0203 memory-type table (strap 0 = HBM2) |
//! | 0xfff | checksum byte: the image sums to 0 mod 256 |
//!
//! What nouveau does with it when the device is already posted (0x2240c bit 1, see
//! `regs::devinit`): it checks the structures and runs nothing, which is honest: there is no
//! init script or PMU code here to run, and we never claim to post.

/// Image size: 4 KiB.
pub const IMAGE_SIZE: usize = 4096;

/// The BIOS version the 'i' table reports (major 0x86: the Pascal family's VBIOS line).
/// Ours: 86.00.65.6d.01 ("em" for emulated, patch 1).
pub const VERSION: [u8; 5] = [0x6d, 0x65, 0x00, 0x86, 0x01];

const PCIR: usize = 0x80;
const BIT: usize = 0x100;
const TBL_I_LOWER: usize = 0x200; // 'i'
const TBL_I_UPPER: usize = 0x240; // 'I'
const TBL_P_LOWER: usize = 0x280; // 'p' (a u32 pointer to the PMU table)
const PMU_TABLE: usize = 0x290;
const PMU_APP_DEVINIT: usize = 0x300;
const PMU_APP_PREOS: usize = 0x340;
const TBL_P_UPPER: usize = 0x380; // 'P'
const RAMMAP: usize = 0x400;
const DCB: usize = 0x440;
const TBL_M: usize = 0x460; // 'M'
const M0203: usize = 0x470;

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Builds the image.
pub fn build() -> Vec<u8> {
    let mut b = vec![0u8; IMAGE_SIZE];
    // ROM header: signature, size in 512-byte blocks, PCIR and DCB pointers.
    b[0] = 0x55;
    b[1] = 0xaa;
    b[2] = (IMAGE_SIZE / 512) as u8;
    put16(&mut b, 0x18, PCIR as u16);
    put16(&mut b, 0x36, DCB as u16);

    // PCI data structure (PCI Firmware Spec 3.0 §5.1.2, as nouveau's pcir.c reads it).
    b[PCIR..PCIR + 4].copy_from_slice(b"PCIR");
    put16(&mut b, PCIR + 0x04, 0x10de);
    put16(&mut b, PCIR + 0x06, 0x15f8);
    put16(&mut b, PCIR + 0x0a, 0x18); // structure length
    b[PCIR + 0x0c] = 0; // revision
    b[PCIR + 0x0d] = 0x00; // class code: 03 02 00 (3D controller)
    b[PCIR + 0x0e] = 0x02;
    b[PCIR + 0x0f] = 0x03;
    put16(&mut b, PCIR + 0x10, (IMAGE_SIZE / 512) as u16);
    b[PCIR + 0x14] = 0x00; // code type: x86 (checksummed)
    b[PCIR + 0x15] = 0x80; // last image

    // BIT header: FF B8 'B' 'I' 'T', version 0x0100, header 12, entry 6, count, checksum.
    let entries: [(u8, u8, u16, usize); 5] = [
        (b'i', 2, 0x0f, TBL_I_LOWER),
        (b'I', 1, 0x1c, TBL_I_UPPER),
        (b'p', 2, 0x04, TBL_P_LOWER),
        (b'P', 2, 0x5c, TBL_P_UPPER),
        (b'M', 2, 0x05, TBL_M),
    ];
    b[BIT..BIT + 5].copy_from_slice(&[0xff, 0xb8, b'B', b'I', b'T']);
    put16(&mut b, BIT + 6, 0x0100);
    b[BIT + 8] = 12;
    b[BIT + 9] = 6;
    b[BIT + 10] = entries.len() as u8;
    for (i, (id, ver, len, off)) in entries.iter().enumerate() {
        let e = BIT + 12 + 6 * i;
        b[e] = *id;
        b[e + 1] = *ver;
        put16(&mut b, e + 2, *len);
        put16(&mut b, e + 4, *off as u16);
    }
    let hsum: u8 = b[BIT..BIT + 12].iter().fold(0u8, |a, &x| a.wrapping_add(x));
    b[BIT + 11] = 0u8.wrapping_sub(hsum);

    // 'i': version dword and patch byte; feature byte 0; +13 u16 = 0 (no DAC-load table).
    b[TBL_I_LOWER..TBL_I_LOWER + 5].copy_from_slice(&VERSION);

    // 'I': every init-script, macro, condition, function, devinit-data and boot-script
    // pointer is 0 (nothing to run: the device is already posted).

    // 'p': u32 pointer to the PMU table. Table: version 1, header 4, entry 6, 2 entries.
    put32(&mut b, TBL_P_LOWER, PMU_TABLE as u32);
    b[PMU_TABLE] = 0x01;
    b[PMU_TABLE + 1] = 4;
    b[PMU_TABLE + 2] = 6;
    b[PMU_TABLE + 3] = 2;
    for (i, (ty, app)) in [(0x04u8, PMU_APP_DEVINIT), (0x01u8, PMU_APP_PREOS)]
        .iter()
        .enumerate()
    {
        let e = PMU_TABLE + 4 + 6 * i;
        b[e] = *ty;
        put32(&mut b, e + 2, *app as u32);
    }
    // The 0x30-byte application headers stay zero: empty code and data, nothing to load.

    // 'P': +4 u32 → rammap table; everything else (perf, therm, fan) absent.
    put32(&mut b, TBL_P_UPPER + 4, RAMMAP as u32);
    // rammap v0x10: header 0x15, entry 0, strap count/size 0, +5 entry count 0, +0x14 script
    // count 0 (gp100_ram_init then runs nothing).
    b[RAMMAP] = 0x10;
    b[RAMMAP + 1] = 0x15;

    // 'M' v2 (nouveau `nvbios_M0203Te`; DRM's `parse_bit_M_tbl_entry` reads +0 and +1 as
    // the RAM-restrict group count and table, both empty): +3 u16 → the memory-type table
    // M0203 v0x10: header 7 bytes (+1 header length, +2 entry length, +3 count, +4 type 0 =
    // RAMCFG strap match), one 2-byte entry: strap 0 (our PEXTDEV_BOOT_0), type 6 = HBM2.
    put16(&mut b, TBL_M + 3, M0203 as u16);
    b[M0203..M0203 + 5].copy_from_slice(&[0x10, 7, 2, 1, 0x00]);
    b[M0203 + 7] = 0x06;

    // DCB 4.1 header with no outputs and no CCB/GPIO tables.
    b[DCB] = 0x41;
    b[DCB + 1] = 0x0c;
    b[DCB + 2] = 0;
    b[DCB + 3] = 8;
    put32(&mut b, DCB + 6, 0x4edc_bdcb);

    // Checksum: the whole image sums to 0.
    let sum: u8 = b.iter().fold(0u8, |a, &x| a.wrapping_add(x));
    b[IMAGE_SIZE - 1] = 0u8.wrapping_sub(sum);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rd16(b: &[u8], at: usize) -> usize {
        u16::from_le_bytes([b[at], b[at + 1]]) as usize
    }
    fn rd32(b: &[u8], at: usize) -> usize {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
    }

    /// Finds a BIT entry the way nouveau's bit.c does (entry size and count from the header).
    fn bit_entry(b: &[u8], id: u8) -> Option<(u8, usize, usize)> {
        let bit = b
            .windows(5)
            .position(|w| w == [0xff, 0xb8, b'B', b'I', b'T'])?;
        let (size, count) = (b[bit + 9] as usize, b[bit + 10] as usize);
        (0..count)
            .map(|i| bit + 12 + i * size)
            .find(|&e| b[e] == id)
            .map(|e| (b[e + 1], rd16(b, e + 2), rd16(b, e + 4)))
    }

    #[test]
    fn image_is_usable_as_nouveau_scores_it() {
        let b = build();
        assert_eq!(&b[..2], &[0x55, 0xaa]);
        let pcir = rd16(&b, 0x18);
        assert_eq!(&b[pcir..pcir + 4], b"PCIR");
        assert_eq!(rd16(&b, pcir + 4), 0x10de);
        assert_eq!(rd16(&b, pcir + 0x10) * 512, b.len());
        assert_eq!(b[pcir + 0x14], 0, "x86 image type: checksummed");
        assert_ne!(b[pcir + 0x15] & 0x80, 0, "last image");
        assert_eq!(b.iter().fold(0u8, |a, &x| a.wrapping_add(x)), 0, "checksum");
        // No BMP signature by accident.
        assert!(!b.windows(5).any(|w| w == [0xff, 0x7f, b'N', b'V', 0]));
    }

    #[test]
    fn bit_tables_meet_nouveaus_requirements() {
        let b = build();
        // 'i': DRM needs length >= 15 and a zero DAC-load pointer at +13; nvkm reads the version.
        let (_, len, off) = bit_entry(&b, b'i').unwrap();
        assert!(len >= 15);
        assert_eq!(rd16(&b, off + 13), 0);
        assert_eq!(b[off + 3], 0x86, "major version");
        // 'I': gm200_devinit_post needs version 1 and length >= 0x1c.
        let (ver, len, _) = bit_entry(&b, b'I').unwrap();
        assert_eq!(ver, 1);
        assert!(len >= 0x1c);
        // 'p': version 2, length >= 4, a PMU table with a DEVINIT (type 4) entry, non-zero app.
        let (ver, len, off) = bit_entry(&b, b'p').unwrap();
        assert_eq!(ver, 2);
        assert!(len >= 4);
        let t = rd32(&b, off);
        let (hdr, elen, cnt) = (b[t + 1] as usize, b[t + 2] as usize, b[t + 3] as usize);
        let devinit = (0..cnt)
            .map(|i| t + hdr + i * elen)
            .find(|&e| b[e] == 0x04)
            .map(|e| rd32(&b, e + 2))
            .unwrap();
        assert_ne!(devinit, 0);
        assert!(
            devinit + 0x30 <= b.len(),
            "the app header is inside the image"
        );
        // 'P': version 2, rammap v0x10/0x11 with header >= 0x15 and no scripts.
        let (ver, _, off) = bit_entry(&b, b'P').unwrap();
        assert_eq!(ver, 2);
        let r = rd32(&b, off + 4);
        assert!(b[r] == 0x10 || b[r] == 0x11);
        assert!(b[r + 1] >= 0x15);
        assert_eq!(b[r + 0x14], 0);
        // Every table offset is 16-bit addressable and inside the image.
        // 'M': the M0203 entry for strap 0 says HBM2 (type 6), as on a P100.
        let (ver, len, off) = bit_entry(&b, b'M').unwrap();
        assert_eq!((ver, len), (2, 5));
        let t = rd16(&b, off + 3);
        assert_eq!(
            (b[t], b[t + 1], b[t + 2], b[t + 3], b[t + 4]),
            (0x10, 7, 2, 1, 0)
        );
        assert_eq!(b[t + 7] & 0xf, 6, "HBM2");
        assert_eq!(b[t + 7] >> 4, 0, "strap 0");
        for id in [b'i', b'I', b'p', b'P', b'M'] {
            let (_, len, off) = bit_entry(&b, id).unwrap();
            assert!(off + len <= b.len(), "{}", id as char);
        }
        // DCB 4.1 with its signature.
        let dcb = rd16(&b, 0x36);
        assert_eq!(b[dcb], 0x41);
        assert_eq!(rd32(&b, dcb + 6), 0x4edc_bdcb);
    }
}
