//! Property-based fuzzing of the message-to-model path: whatever sequence of
//! decoded vfio-user requests arrives (hostile offsets, sizes, regions, DMA
//! ranges, IRQ flags), the backend answers without panicking, keeps serving,
//! and the device's identity survives. (cargo-fuzz needs a nightly toolchain,
//! which this project's machines cannot fetch; proptest does the job here.)

use emulator::Device;
use proptest::prelude::*;
use qemu_glue::transport::vfio_user::Gp100Backend;
use vfio_user::{DmaMapFlags, DmaUnmapFlags, ServerBackend};

#[derive(Debug, Clone)]
enum Req {
    Read {
        region: u32,
        offset: u64,
        len: usize,
    },
    Write {
        region: u32,
        offset: u64,
        data: Vec<u8>,
    },
    Map {
        addr: u64,
        size: u64,
        offset: u64,
    },
    Unmap {
        addr: u64,
        size: u64,
    },
    Irqs {
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
    },
    Reset,
}

fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..0x100,
        0xff_0000u64..0xff_1000,
        0u64..(16 << 20),
        (16u64 << 20) - 8..(16 << 20) + 8,
        any::<u64>(),
    ]
}

fn req() -> impl Strategy<Value = Req> {
    prop_oneof![
        (0u32..12, offset(), 0usize..300).prop_map(|(region, offset, len)| Req::Read {
            region,
            offset,
            len
        }),
        (
            0u32..12,
            offset(),
            prop::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(region, offset, data)| Req::Write {
                region,
                offset,
                data
            }),
        (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(addr, size, offset)| Req::Map {
            addr,
            size,
            offset
        }),
        (any::<u64>(), any::<u64>()).prop_map(|(addr, size)| Req::Unmap { addr, size }),
        (0u32..6, any::<u32>(), 0u32..3, 0u32..3).prop_map(|(index, flags, start, count)| {
            Req::Irqs {
                index,
                flags,
                start,
                count,
            }
        }),
        Just(Req::Reset),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_request_sequence_is_answered_without_panic(reqs in prop::collection::vec(req(), 1..64)) {
        let mut b = Gp100Backend::new(Device::new());
        for r in reqs {
            match r {
                Req::Read { region, offset, len } => {
                    let mut data = vec![0u8; len];
                    prop_assert!(b.region_read(region, offset, &mut data).is_ok());
                }
                Req::Write { region, offset, data } => {
                    prop_assert!(b.region_write(region, offset, &data).is_ok());
                }
                // Without an fd these only record ranges; errors are answers, not panics.
                Req::Map { addr, size, offset } => {
                    let _ = b.dma_map(DmaMapFlags::READ_WRITE, offset, addr, size, None);
                }
                Req::Unmap { addr, size } => {
                    let _ = b.dma_unmap(DmaUnmapFlags::empty(), addr, size);
                }
                Req::Irqs { index, flags, start, count } => {
                    let _ = b.set_irqs(index, flags, start, count, Vec::new());
                }
                Req::Reset => prop_assert!(b.reset().is_ok()),
            }
        }
        // The function still identifies itself and still serves BAR0.
        let mut id = [0u8; 4];
        b.region_read(7, 0, &mut id).unwrap();
        prop_assert_eq!(u32::from_le_bytes(id), 0x15f8_10de);
        let mut boot0 = [0u8; 4];
        b.region_read(0, 0, &mut boot0).unwrap();
        prop_assert_eq!(u32::from_le_bytes(boot0), 0x1300_00a1);
    }
}
