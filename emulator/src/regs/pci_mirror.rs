//! The BAR0 mirror of PCI configuration space: 0x088000 + n reads and writes config offset n
//! (nouveau `nv40_pci_rd32/wr32`), and the MSI re-arm register in it.

use std::ops::Range;

use crate::bus::{Ctx, Unit};

/// First BAR0 offset of the mirror.
pub const PCI_MIRROR: u32 = 0x088000;
/// Size of the mirror (the 4 KiB of PCIe configuration space).
pub const PCI_MIRROR_SIZE: u32 = 0x1000;
/// MSI re-arm register (nouveau `gp100_pci_msi_rearm` writes 0 here from every interrupt).
pub const PCI_MSI_REARM: u32 = 0x088704;

/// The mirror (its state is config space itself, in the context).
#[derive(Debug, Clone, Default)]
pub struct PciMirror;

impl Unit for PciMirror {
    fn name(&self) -> &'static str {
        "PCI_MIRROR"
    }

    fn ranges(&self) -> Vec<Range<u32>> {
        crate::bus::block(PCI_MIRROR, PCI_MIRROR_SIZE)
    }

    fn read32(&mut self, ctx: &mut Ctx, offset: u32) -> Option<u32> {
        Some(match offset {
            PCI_MSI_REARM => 0,
            o => {
                let mut b = [0u8; 4];
                ctx.config.read(u64::from(o - PCI_MIRROR), &mut b, ctx.irq);
                u32::from_le_bytes(b)
            }
        })
    }

    fn write32(&mut self, ctx: &mut Ctx, offset: u32, value: u32) -> bool {
        // The MSI re-arm: the function may signal again. Our MSI follows the interrupt
        // condition's rising edges, which nouveau's unarm/rearm around the write produce.
        if offset != PCI_MSI_REARM {
            ctx.config
                .write(u64::from(offset - PCI_MIRROR), &value.to_le_bytes());
        }
        true
    }

    fn reset(&mut self, _: &mut Ctx) {}
}
