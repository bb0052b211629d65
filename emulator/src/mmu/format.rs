//! The Pascal "version 2" page-table entry formats: PDE, dual PD0 entry, PTE.
//!
//! Field positions are NVIDIA's `NV_MMU_VER2_*` definitions in
//! open-gpu-kernel-modules `src/common/inc/swref/published/pascal/gp100/dev_mmu.h`
//! (checked there; summarised in ../shared/spec/gp100-facts.md). Every accessor here is a
//! plain bit extraction: any 64-bit value decodes to something, so guest garbage is never
//! an error at this layer, only at the walker's.

use serde::Serialize;

use crate::mem::Target;

/// Where a PTE's page lives (`NV_MMU_VER2_PTE_APERTURE`, bits 2:1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PteAperture {
    /// 0: the GPU's own memory.
    Video,
    /// 1: another GPU's memory (peer id in bits 35:33).
    Peer,
    /// 2: system memory, snooped.
    SysCoherent,
    /// 3: system memory, not snooped.
    SysNoncoherent,
}

impl PteAperture {
    fn from_bits(b: u64) -> Self {
        match b & 3 {
            0 => PteAperture::Video,
            1 => PteAperture::Peer,
            2 => PteAperture::SysCoherent,
            _ => PteAperture::SysNoncoherent,
        }
    }

    fn bits(self) -> u64 {
        match self {
            PteAperture::Video => 0,
            PteAperture::Peer => 1,
            PteAperture::SysCoherent => 2,
            PteAperture::SysNoncoherent => 3,
        }
    }

    /// Whether the page is in system memory (guest RAM for us).
    pub fn is_system(self) -> bool {
        matches!(self, PteAperture::SysCoherent | PteAperture::SysNoncoherent)
    }
}

/// Where a PDE's next-level table lives (`NV_MMU_VER2_PDE_APERTURE`, bits 2:1). Note the
/// encoding differs from the PTE's: 0 means "no table".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PdeAperture {
    /// 0: the entry points nowhere.
    Invalid,
    /// 1: the table is in video memory.
    Video,
    /// 2: the table is in system memory, snooped.
    SysCoherent,
    /// 3: the table is in system memory, not snooped.
    SysNoncoherent,
}

impl PdeAperture {
    fn from_bits(b: u64) -> Self {
        match b & 3 {
            0 => PdeAperture::Invalid,
            1 => PdeAperture::Video,
            2 => PdeAperture::SysCoherent,
            _ => PdeAperture::SysNoncoherent,
        }
    }

    fn bits(self) -> u64 {
        match self {
            PdeAperture::Invalid => 0,
            PdeAperture::Video => 1,
            PdeAperture::SysCoherent => 2,
            PdeAperture::SysNoncoherent => 3,
        }
    }

    /// The memory the next-level table is in; None for an entry that points nowhere.
    pub fn target(self) -> Option<Target> {
        match self {
            PdeAperture::Invalid => None,
            PdeAperture::Video => Some(Target::Video),
            PdeAperture::SysCoherent => Some(Target::SysCoherent),
            PdeAperture::SysNoncoherent => Some(Target::SysNoncoherent),
        }
    }
}

const VALID: u64 = 1 << 0; // NV_MMU_VER2_PTE_VALID 0:0
const APERTURE_SHIFT: u32 = 1; // NV_MMU_VER2_{PDE,PTE}_APERTURE 2:1
const VOL: u64 = 1 << 3; // NV_MMU_VER2_{PDE,PTE}_VOL 3:3
const ENCRYPTED: u64 = 1 << 4; // NV_MMU_VER2_PTE_ENCRYPTED 4:4
const PRIVILEGE: u64 = 1 << 5; // NV_MMU_VER2_PTE_PRIVILEGE 5:5
const READ_ONLY: u64 = 1 << 6; // NV_MMU_VER2_PTE_READ_ONLY 6:6
const ATOMIC_DISABLE: u64 = 1 << 7; // NV_MMU_VER2_PTE_ATOMIC_DISABLE 7:7
/// `NV_MMU_VER2_*_ADDRESS_SHIFT`: addresses are stored in 4 KiB units.
const ADDRESS_SHIFT: u32 = 12;
/// `ADDRESS_SYS` 53:8 (46 bits).
const ADDR_SYS_MASK: u64 = (1 << 46) - 1;
/// `ADDRESS_VID` (35-3):8 (25 bits).
const ADDR_VID_MASK: u64 = (1 << 25) - 1;
/// `NV_MMU_VER2_PTE_ADDRESS_VID_PEER` 35:33.
const PEER_SHIFT: u32 = 33;
/// `NV_MMU_VER2_PTE_COMPTAGLINE` (18+35):36 — 18 bits.
const COMPTAG_SHIFT: u32 = 36;
const COMPTAG_MASK: u64 = (1 << 18) - 1;
/// `NV_MMU_VER2_PTE_KIND` 63:56.
const KIND_SHIFT: u32 = 56;

/// A version-2 PTE (8 bytes), for 4 KiB, 64 KiB and 2 MiB pages alike (the page size is a
/// property of the table holding it, not of the entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pte(pub u64);

impl Pte {
    /// `VALID`.
    pub fn valid(self) -> bool {
        self.0 & VALID != 0
    }
    /// `APERTURE`.
    pub fn aperture(self) -> PteAperture {
        PteAperture::from_bits(self.0 >> APERTURE_SHIFT)
    }
    /// `VOL` (volatile: bypass the L2 for this page).
    pub fn vol(self) -> bool {
        self.0 & VOL != 0
    }
    /// `ENCRYPTED`.
    pub fn encrypted(self) -> bool {
        self.0 & ENCRYPTED != 0
    }
    /// `PRIVILEGE`: only privileged clients may access it.
    pub fn privilege(self) -> bool {
        self.0 & PRIVILEGE != 0
    }
    /// `READ_ONLY`.
    pub fn read_only(self) -> bool {
        self.0 & READ_ONLY != 0
    }
    /// `ATOMIC_DISABLE`.
    pub fn atomic_disable(self) -> bool {
        self.0 & ATOMIC_DISABLE != 0
    }
    /// `KIND` (memory layout kind; 0 pitch).
    pub fn kind(self) -> u8 {
        (self.0 >> KIND_SHIFT) as u8
    }
    /// `COMPTAGLINE` (video and peer pages; for system pages these bits are part of
    /// `ADDRESS_SYS`, so this reads 0).
    pub fn comptag(self) -> u32 {
        if self.aperture().is_system() {
            return 0;
        }
        ((self.0 >> COMPTAG_SHIFT) & COMPTAG_MASK) as u32
    }
    /// `ADDRESS_VID_PEER`: the peer GPU (peer aperture only; 0 otherwise, where these bits
    /// belong to the address or comptag fields).
    pub fn peer(self) -> u8 {
        if self.aperture() != PteAperture::Peer {
            return 0;
        }
        ((self.0 >> PEER_SHIFT) & 7) as u8
    }

    /// The memory the page is in (a peer GPU's carries the peer id).
    pub fn target(self) -> Target {
        match self.aperture() {
            PteAperture::Video => Target::Video,
            PteAperture::Peer => Target::Peer(self.peer()),
            PteAperture::SysCoherent => Target::SysCoherent,
            PteAperture::SysNoncoherent => Target::SysNoncoherent,
        }
    }
    /// The page's byte address: `ADDRESS_SYS` for system apertures, `ADDRESS_VID` otherwise,
    /// times 4 KiB. Kept when VALID is clear (nouveau's PFN unmap leaves it there).
    pub fn address(self) -> u64 {
        let field = self.0 >> 8;
        let units = if self.aperture().is_system() {
            field & ADDR_SYS_MASK
        } else {
            field & ADDR_VID_MASK
        };
        units << ADDRESS_SHIFT
    }

    /// Builds a PTE from its fields (address must be 4 KiB aligned and fit the aperture's
    /// field; extra bits are dropped).
    pub fn build(f: &PteFields) -> Self {
        let mask = if f.aperture.is_system() {
            ADDR_SYS_MASK
        } else {
            ADDR_VID_MASK
        };
        let mut v = ((f.address >> ADDRESS_SHIFT) & mask) << 8;
        v |= f.aperture.bits() << APERTURE_SHIFT;
        let flag = |b: bool, bit: u64| if b { bit } else { 0 };
        v |= flag(f.valid, VALID)
            | flag(f.vol, VOL)
            | flag(f.encrypted, ENCRYPTED)
            | flag(f.privilege, PRIVILEGE)
            | flag(f.read_only, READ_ONLY)
            | flag(f.atomic_disable, ATOMIC_DISABLE);
        if f.aperture == PteAperture::Peer {
            v |= u64::from(f.peer & 7) << PEER_SHIFT;
        }
        if !f.aperture.is_system() {
            v |= (u64::from(f.comptag) & COMPTAG_MASK) << COMPTAG_SHIFT;
        }
        v |= u64::from(f.kind) << KIND_SHIFT;
        Pte(v)
    }

    /// All fields.
    pub fn fields(self) -> PteFields {
        PteFields {
            valid: self.valid(),
            aperture: self.aperture(),
            vol: self.vol(),
            encrypted: self.encrypted(),
            privilege: self.privilege(),
            read_only: self.read_only(),
            atomic_disable: self.atomic_disable(),
            kind: self.kind(),
            comptag: self.comptag(),
            peer: self.peer(),
            address: self.address(),
        }
    }

    /// The PTE nouveau's `gp100_vmm_pgt_pfn` writes for a system-memory page
    /// (`addr >> 4 | 2 << 1 | VOL | VALID`, plus RO and ATOMIC_DISABLE as HMM dictates;
    /// nvkm/subdev/mmu/vmmgp100.c, Linux 6.12).
    pub fn pfn_system(addr: u64, writable: bool, atomic: bool) -> Self {
        let mut v = (addr >> 4) | (2 << 1) | VOL | VALID;
        if !writable {
            v |= READ_ONLY;
        }
        if !atomic {
            v |= ATOMIC_DISABLE;
        }
        Pte(v)
    }

    /// The PTE `gp100_vmm_pgt_pfn` writes for a device-private (VRAM) page: `addr >> 4 | VALID`.
    pub fn pfn_vram(addr: u64) -> Self {
        Pte((addr >> 4) | VALID)
    }

    /// The PTE-shaped word the PTE checker reports for a GPU use of the page at `pa` (what
    /// the translation amounted to): VALID, READ_ONLY unless `writable`, the page address in
    /// the address field's place; aperture and the other fields 0.
    pub fn use_shaped(pa: u64, writable: bool) -> Self {
        let mut v = ((pa >> ADDRESS_SHIFT) << 8) | VALID;
        if !writable {
            v |= READ_ONLY;
        }
        Pte(v)
    }

    /// The unmapped form nouveau's PFN unmap leaves: VALID cleared, everything else kept
    /// (`gp100_vmm_pfn_clear`).
    pub fn invalidated(self) -> Self {
        Pte(self.0 & !VALID)
    }
}

/// The fields of a PTE, named as `gp100emu decode pte` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PteFields {
    /// VALID.
    pub valid: bool,
    /// APERTURE.
    pub aperture: PteAperture,
    /// VOL.
    pub vol: bool,
    /// ENCRYPTED.
    pub encrypted: bool,
    /// PRIVILEGE.
    #[serde(rename = "priv")]
    pub privilege: bool,
    /// READ_ONLY.
    pub read_only: bool,
    /// ATOMIC_DISABLE.
    pub atomic_disable: bool,
    /// KIND.
    pub kind: u8,
    /// COMPTAGLINE.
    pub comptag: u32,
    /// ADDRESS_VID_PEER.
    pub peer: u8,
    /// Page byte address.
    #[serde(serialize_with = "hex_u64")]
    pub address: u64,
}

pub use crate::hw::field::hex_u64;

/// A version-2 PDE of levels PD3, PD2, PD1 (8 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pde(pub u64);

impl Pde {
    /// `APERTURE` of the next-level table.
    pub fn aperture(self) -> PdeAperture {
        PdeAperture::from_bits(self.0 >> APERTURE_SHIFT)
    }
    /// Whether the entry points at a table.
    pub fn valid(self) -> bool {
        self.aperture() != PdeAperture::Invalid
    }
    /// `VOL`.
    pub fn vol(self) -> bool {
        self.0 & VOL != 0
    }
    /// The next-level table's byte address (4 KiB units from bit 8).
    pub fn address(self) -> u64 {
        let field = self.0 >> 8;
        let units = match self.aperture() {
            PdeAperture::Video => field & ADDR_VID_MASK,
            _ => field & ADDR_SYS_MASK,
        };
        units << ADDRESS_SHIFT
    }
    /// Builds a PDE.
    pub fn build(aperture: PdeAperture, vol: bool, address: u64) -> Self {
        let mask = if aperture == PdeAperture::Video {
            ADDR_VID_MASK
        } else {
            ADDR_SYS_MASK
        };
        Pde(((address >> ADDRESS_SHIFT) & mask) << 8
            | aperture.bits() << APERTURE_SHIFT
            | if vol { VOL } else { 0 })
    }
}

/// `NV_MMU_VER2_DUAL_PDE_ADDRESS_BIG_SHIFT`: the big half counts 256-byte units.
const BIG_ADDRESS_SHIFT: u32 = 8;
/// `ADDRESS_BIG_SYS` 53:4 (50 bits).
const BIG_ADDR_SYS_MASK: u64 = (1 << 50) - 1;
/// `ADDRESS_BIG_VID` 32:4 (29 bits).
const BIG_ADDR_VID_MASK: u64 = (1 << 29) - 1;

/// A PD0 entry (16 bytes): the big-page (64 KiB) table in the low 64 bits, the small-page
/// (4 KiB) table in the high 64 bits (`NV_MMU_VER2_DUAL_PDE_*`: APERTURE_BIG 2:1, VOL_BIG
/// 3, ADDRESS_BIG 53:4 with shift 8; APERTURE_SMALL 66:65, VOL_SMALL 67, ADDRESS_SMALL
/// 117:72 with shift 12). When bit 0 (`IS_PTE`) is set it is a 2 MiB PTE instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DualPde {
    /// Bits 63:0.
    pub lo: u64,
    /// Bits 127:64.
    pub hi: u64,
}

impl DualPde {
    /// Whether the low word is a 2 MiB PTE rather than a big-page-table pointer
    /// (`NV_MMU_VER2_PDE_IS_PTE` — bit 0, which is PTE VALID in the PTE layout).
    pub fn is_pte(self) -> bool {
        self.lo & VALID != 0
    }
    /// The entry as a 2 MiB PTE.
    pub fn as_pte(self) -> Pte {
        Pte(self.lo)
    }
    /// Big-page table aperture.
    pub fn big_aperture(self) -> PdeAperture {
        PdeAperture::from_bits(self.lo >> APERTURE_SHIFT)
    }
    /// Big-page table VOL.
    pub fn big_vol(self) -> bool {
        self.lo & VOL != 0
    }
    /// Big-page table byte address (256-byte units from bit 4).
    pub fn big_address(self) -> u64 {
        let field = self.lo >> 4;
        let units = match self.big_aperture() {
            PdeAperture::Video => field & BIG_ADDR_VID_MASK,
            _ => field & BIG_ADDR_SYS_MASK,
        };
        units << BIG_ADDRESS_SHIFT
    }
    /// Small-page table: the high word has the PDE layout.
    pub fn small(self) -> Pde {
        Pde(self.hi)
    }
    /// Builds a dual entry.
    pub fn build(big: (PdeAperture, bool, u64), small: (PdeAperture, bool, u64)) -> Self {
        let (ba, bv, baddr) = big;
        let mask = if ba == PdeAperture::Video {
            BIG_ADDR_VID_MASK
        } else {
            BIG_ADDR_SYS_MASK
        };
        let lo = ((baddr >> BIG_ADDRESS_SHIFT) & mask) << 4
            | ba.bits() << APERTURE_SHIFT
            | if bv { VOL } else { 0 };
        DualPde {
            lo,
            hi: Pde::build(small.0, small.1, small.2).0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_shaped_is_the_word_the_checker_always_reported() {
        for (pa, w) in [
            (0x1234_5678u64, true),
            (0x3f_ffff_f000, false),
            (u64::MAX, false),
        ] {
            let hand = (pa & !0xfff) >> 4 | u64::from(!w) << 6 | 1;
            assert_eq!(Pte::use_shaped(pa, w).0, hand, "{pa:#x}");
        }
        let p = Pte::use_shaped(0x5000, false);
        assert!(p.valid() && p.read_only());
        assert_eq!(p.address(), 0x5000);
    }

    #[test]
    fn pfn_pte_for_a_system_page_as_nouveau_writes_it() {
        // gp100_vmm_pgt_pfn: (dma_addr >> 4) | 2 << 1 | VOL (1 << 3) | VALID, computed here
        // the way the driver does for a writable, atomic-capable page at 0x1234_5000.
        let addr = 0x1234_5000u64;
        let nouveau = (addr >> 4) | (2 << 1) | (1 << 3) | 1;
        let p = Pte::pfn_system(addr, true, true);
        assert_eq!(p.0, nouveau);
        assert!(p.valid() && p.vol() && !p.read_only() && !p.atomic_disable());
        assert_eq!(p.aperture(), PteAperture::SysCoherent);
        assert_eq!(p.address(), addr);
        let ro = Pte::pfn_system(addr, false, false);
        assert_eq!(ro.0, nouveau | (1 << 6) | (1 << 7));
        assert!(ro.read_only() && ro.atomic_disable());
    }

    #[test]
    fn pfn_pte_for_a_vram_page_and_the_unmapped_form() {
        let p = Pte::pfn_vram(0x8000_0000);
        assert_eq!(p.0, (0x8000_0000u64 >> 4) | 1);
        assert_eq!(p.aperture(), PteAperture::Video);
        assert_eq!(p.address(), 0x8000_0000);
        let gone = Pte::pfn_system(0x1234_5000, true, true).invalidated();
        assert!(!gone.valid());
        assert_eq!(gone.address(), 0x1234_5000, "the old address stays");
        assert!(gone.vol());
    }

    #[test]
    fn pte_round_trips_every_field() {
        for aperture in [
            PteAperture::Video,
            PteAperture::Peer,
            PteAperture::SysCoherent,
            PteAperture::SysNoncoherent,
        ] {
            for bits in 0..64u32 {
                let f = PteFields {
                    valid: bits & 1 != 0,
                    aperture,
                    vol: bits & 2 != 0,
                    encrypted: bits & 4 != 0,
                    privilege: bits & 8 != 0,
                    read_only: bits & 16 != 0,
                    atomic_disable: bits & 32 != 0,
                    kind: 0xfe,
                    comptag: if aperture.is_system() { 0 } else { 0x2_1234 },
                    peer: if aperture == PteAperture::Peer { 5 } else { 0 },
                    address: if aperture.is_system() {
                        0x3f_ffff_f000
                    } else {
                        0x1_2345_6000
                    },
                };
                let p = Pte::build(&f);
                assert_eq!(p.fields(), f, "{aperture:?} {bits:#x}: {:#x}", p.0);
            }
        }
    }

    #[test]
    fn pde_and_dual_pde() {
        let p = Pde::build(PdeAperture::Video, false, 0x20_0000);
        assert_eq!(p.0, (0x20_0000u64 >> 4) | (1 << 1));
        assert_eq!(p.address(), 0x20_0000);
        assert!(p.valid());
        assert!(!Pde(0).valid());
        let sys = Pde::build(PdeAperture::SysCoherent, true, 0x7654_3000);
        assert_eq!(sys.aperture(), PdeAperture::SysCoherent);
        assert!(sys.vol());
        assert_eq!(sys.address(), 0x7654_3000);
        // The big half's address is in 256-byte units: a 256-byte-aligned table survives.
        let d = DualPde::build(
            (PdeAperture::Video, false, 0x45_6700),
            (PdeAperture::SysNoncoherent, true, 0x12_3000),
        );
        assert!(!d.is_pte());
        assert_eq!(d.big_address(), 0x45_6700);
        assert_eq!(d.big_aperture(), PdeAperture::Video);
        assert_eq!(d.small().address(), 0x12_3000);
        assert_eq!(d.small().aperture(), PdeAperture::SysNoncoherent);
        assert!(d.small().vol());
        assert_eq!(d.lo, ((0x45_6700u64 >> 8) << 4) | (1 << 1));
    }

    #[test]
    fn any_value_decodes_without_panicking() {
        for v in [0u64, u64::MAX, 0x8000_0000_0000_0001, 0x5555_5555_5555_5555] {
            let p = Pte(v);
            let _ = p.fields();
            let _ = Pde(v).address();
            let d = DualPde { lo: v, hi: !v };
            let _ = (d.big_address(), d.small().address(), d.is_pte());
        }
    }
}
