//! The host's pushbuffer vocabulary, named: GP entries, method headers (SEC_OP), the host
//! methods (class PASCAL_CHANNEL_GPFIFO_A, methods below 0x100 on any subchannel) and their
//! fields.
//!
//! Source: NVIDIA `clc06f.h` (PASCAL_CHANNEL_GPFIFO_A, open-gpu-doc); what nouveau 6.12 emits
//! is in `nouveau_dma.c` `nv50_dma_push` and `include/nvif/push906f.h`. The PBDMA that
//! executes them is `fifo/pbdma.rs`; the copy engine's methods are `ce::mthd`.

use crate::hw::field::Field;

/// GP entry word 0: segment address bits 31:2 (in place).
pub const GP_ENTRY0_GET: Field = Field::new(2, 30);
/// GP entry word 1: segment address bits 39:32.
pub const GP_ENTRY1_GET_HI: Field = Field::new(0, 8);
/// GP entry word 1: `LENGTH` in dwords (30:10); 0 is a control entry.
pub const GP_ENTRY1_LENGTH: Field = Field::new(10, 21);

/// The segment's address (GP entry words 0 and 1).
pub fn gp_entry_address(e0: u32, e1: u32) -> u64 {
    (GP_ENTRY1_GET_HI.get(u64::from(e1)) << 32) | (u64::from(e0) & GP_ENTRY0_GET.mask())
}

/// Method header: `METHOD_ADDRESS` (11:0), the method's byte offset >> 2.
pub const HDR_ADDRESS: Field = Field::new(0, 12);
/// Method header: `SUBCHANNEL` (15:13).
pub const HDR_SUBCHANNEL: Field = Field::new(13, 3);
/// Method header: `METHOD_COUNT` (28:16), or the 13-bit data of an immediate header.
pub const HDR_COUNT: Field = Field::new(16, 13);
/// Method header: `SEC_OP` (31:29), see [`SecOp`].
pub const HDR_SEC_OP: Field = Field::new(29, 3);
/// Method offsets wrap within the 16 KiB method space (a 12-bit dword address).
pub const METHOD_SPACE_MASK: u32 = 0x3ffc;

/// A method header's `SEC_OP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecOp {
    /// 0 `GRP0_USE_TERT`: 0x00000000 is a NOP; the rest concern SLI subdevice masks.
    Control,
    /// 1 `INC_METHOD`: COUNT data dwords to consecutive methods.
    Inc,
    /// 3 `NON_INC_METHOD`: COUNT data dwords to the same method.
    NonInc,
    /// 4 `IMMD_DATA_METHOD`: the header's COUNT field is the data.
    Immediate,
    /// 5 `ONE_INC`: the first dword to the method, the rest to the next one.
    OneInc,
    /// 7 `END_PB_SEGMENT`.
    EndSegment,
    /// 2 and 6 (`GRP2_USE_TERT`, reserved): illegal here.
    Illegal(u32),
}

/// A header's `SEC_OP`.
pub fn sec_op(header: u32) -> SecOp {
    match HDR_SEC_OP.get32(header) {
        0 => SecOp::Control,
        1 => SecOp::Inc,
        3 => SecOp::NonInc,
        4 => SecOp::Immediate,
        5 => SecOp::OneInc,
        7 => SecOp::EndSegment,
        op => SecOp::Illegal(op),
    }
}

/// The first method the engine on the subchannel gets (below: host methods).
pub const ENGINE_METHODS: u32 = 0x100;
/// Subchannels 5..7 carry software methods (no engine).
pub const LAST_HW_SUBCHANNEL: u8 = 4;

/// Host methods (byte offsets).
pub mod mthd {
    /// `SET_OBJECT`: the class bound to the subchannel (15:0).
    pub const SET_OBJECT: u32 = 0x00;
    /// `ILLEGAL`.
    pub const ILLEGAL: u32 = 0x04;
    /// `NOP`.
    pub const NOP: u32 = 0x08;
    /// `SEMAPHOREA`: address bits 39:32 (7:0).
    pub const SEMAPHOREA: u32 = 0x10;
    /// `SEMAPHOREB`: address bits 31:2 (in place).
    pub const SEMAPHOREB: u32 = 0x14;
    /// `SEMAPHOREC`: payload.
    pub const SEMAPHOREC: u32 = 0x18;
    /// `SEMAPHORED`: the operation ([`super::SEM_OPERATION`]); writing it executes.
    pub const SEMAPHORED: u32 = 0x1c;
    /// `NON_STALL_INTERRUPT`.
    pub const NON_STALL_INTERRUPT: u32 = 0x20;
    /// `FB_FLUSH`.
    pub const FB_FLUSH: u32 = 0x24;
    /// `MEM_OP_A`.
    pub const MEM_OP_A: u32 = 0x28;
    /// `MEM_OP_B`.
    pub const MEM_OP_B: u32 = 0x2c;
    /// `MEM_OP_C`.
    pub const MEM_OP_C: u32 = 0x30;
    /// `MEM_OP_D`: the operation ([`super::MEM_OP_OPERATION`]); writing it executes.
    pub const MEM_OP_D: u32 = 0x34;
    /// `SET_REFERENCE`: written to USERD's REF.
    pub const SET_REFERENCE: u32 = 0x50;
    /// `WFI`.
    pub const WFI: u32 = 0x78;
    /// `CRC_CHECK`.
    pub const CRC_CHECK: u32 = 0x7c;
    /// `YIELD`.
    pub const YIELD: u32 = 0x80;
}

/// `SET_OBJECT`'s class field.
pub const SET_OBJECT_CLASS: Field = Field::new(0, 16);
/// `SEMAPHOREA`'s address bits 39:32.
pub const SEMAPHOREA_OFFSET_UPPER: Field = Field::new(0, 8);
/// `SEMAPHOREB`'s address bits 31:2 (in place).
pub const SEMAPHOREB_OFFSET_LOWER: Field = Field::new(2, 30);
/// `SEMAPHORED.OPERATION` (4:0): 1 ACQUIRE, 2 RELEASE, 4 ACQ_GEQ, 8 ACQ_AND.
pub const SEM_OPERATION: Field = Field::new(0, 5);
/// `SEMAPHORED.RELEASE_SIZE` (24): 0 sixteen bytes (payload, 0, PTIMER ns), 1 four bytes.
pub const SEM_RELEASE_SIZE_4BYTE: Field = Field::bit(24);
/// `MEM_OP_D.OPERATION` (31:27).
pub const MEM_OP_OPERATION: Field = Field::new(27, 5);

/// `SEMAPHORED.OPERATION` values.
pub mod sem_op {
    /// ACQUIRE: wait until the semaphore equals the payload.
    pub const ACQUIRE: u32 = 1;
    /// RELEASE: write the payload (and the time).
    pub const RELEASE: u32 = 2;
    /// ACQ_GEQ: wait until the semaphore is at least the payload (wrapping).
    pub const ACQ_GEQ: u32 = 4;
    /// ACQ_AND: wait until the semaphore and the payload share a bit.
    pub const ACQ_AND: u32 = 8;
}

/// `MEM_OP_D.OPERATION` values the model acts on.
pub mod mem_op {
    /// MMU_TLB_INVALIDATE.
    pub const MMU_TLB_INVALIDATE: u32 = 9;
    /// MMU_TLB_INVALIDATE_TARGETED.
    pub const MMU_TLB_INVALIDATE_TARGETED: u32 = 0xa;
}

/// The semaphore address (SEMAPHOREA and B).
pub fn semaphore_address(a: u32, b: u32) -> u64 {
    (SEMAPHOREA_OFFSET_UPPER.get(u64::from(a)) << 32)
        | (u64::from(b) & SEMAPHOREB_OFFSET_LOWER.mask())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_entries_nouveau_emits() {
        // push906f.h: an INC header of 2 dwords to method 0x10 on subchannel 0.
        let h = 1 << 29 | 2 << 16 | 0x10 >> 2;
        assert_eq!(sec_op(h), SecOp::Inc);
        assert_eq!(HDR_COUNT.get32(h), 2);
        assert_eq!(HDR_ADDRESS.get32(h) << 2, 0x10);
        assert_eq!(HDR_SUBCHANNEL.get32(4 << 29 | 3 << 13), 3);
        assert_eq!(sec_op(4 << 29), SecOp::Immediate);
        assert_eq!(sec_op(7 << 29), SecOp::EndSegment);
        assert_eq!(sec_op(0), SecOp::Control);
        assert_eq!(sec_op(2 << 29), SecOp::Illegal(2));
        assert_eq!(sec_op(6 << 29), SecOp::Illegal(6));
        // nv50_dma_push: word 1 = upper_32_bits(addr) | length << 10.
        assert_eq!(gp_entry_address(0x1234_5679, 0x0000_0c01), 0x1_1234_5678);
        assert_eq!(GP_ENTRY1_LENGTH.get32(0x0000_0c01), 3);
        assert_eq!(semaphore_address(0x1, 0x2003), 0x1_0000_2000);
        assert_eq!(SEM_OPERATION.get32(0x0100_0002), sem_op::RELEASE);
        assert!(SEM_RELEASE_SIZE_4BYTE.is_set(0x0100_0002));
        assert_eq!(MEM_OP_OPERATION.get32(9 << 27), mem_op::MMU_TLB_INVALIDATE);
    }
}
