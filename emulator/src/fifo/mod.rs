//! PFIFO, the host: channels (PCCSR), runlists, the PBDMAs that execute pushbuffers, and
//! the FIFO interrupt. Register facts from nouveau 6.12 `nvkm/engine/fifo/` (gp100.c,
//! gk104.c, gk110.c, gf100.c, gm200.c) and NVIDIA's gp106 nvgpu headers
//! (`hw_fifo_gp106.h`, `hw_ccsr_gp106.h`), summarised in docs/probe-plan.md §3.1:
//!
//! | offset | register | model |
//! | --- | --- | --- |
//! | 0x002004 | CFG0: PBDMAs in 7:0 (`gm200_fifo_runq_nr`) | [`PBDMAS`] |
//! | 0x002008 | CFG1: channels (`gm200_fifo_chid_nr`) | [`CHANNELS`] |
//! | 0x002100 / 0x002140 | INTR_0 (write 1 to clear) / INTR_EN_0 | bit 31 non-stall, bit 30 runlist event |
//! | 0x002254 | BAR1_BASE: USERD's BAR1 address >> 12, VALID 28 | stored |
//! | 0x002270 / 0x002274 | RUNLIST_BASE (target 29:28, addr >> 12) / RUNLIST (id 23:20, count 15:0): writing it submits | the list is read and checked in the write |
//! | 0x002280 + 8r / 0x002284 + 8r | runlist r base / length, PENDING 20 | pending never outlives the submit |
//! | 0x002390 + 4p | PBDMA_MAP: runlists PBDMA p serves | PBDMA p serves runlist p |
//! | 0x00262c / 0x002630 | ERROR_SCHED_DISABLE (W1C) / SCHED_DISABLE (bit r blocks runlist r) | honoured |
//! | 0x002634 | PREEMPT: id 11:0, TSG 24; PENDING 20 | nothing is ever resident mid-work, so it completes at once |
//! | 0x002640 + 8e | ENGINE_STATUS | engines are idle between accesses |
//! | 0x003080 + 4p | PBDMA_STATUS | idle |
//! | 0x040000 + 0x2000p | PBDMA registers nouveau initialises (INTR/INTREN 0x108/0x10c, HCE 0x148/0x14c, 0x12c, 0x13c) | stored |
//! | 0x800000 + 8c | PCCSR_CHANNEL_INST: PTR 27:0, TARGET 29:28, BIND 31 | stored |
//! | 0x800004 + 8c | PCCSR_CHANNEL: ENABLE 0 (read), ENABLE_SET 10, ENABLE_CLR 11, STATUS 27:24, BUSY 28 | enable latched |
//!
//! Scheduling: a channel runs when it is bound, enabled, on a submitted runlist that is not
//! blocked, and its USERD GP_PUT differs from GP_GET. The device gives the host a bounded
//! budget of work after every access that could have kicked a channel, so a pushbuffer is
//! executed as soon as nouveau writes GP_PUT (Pascal has no doorbell: the host watches
//! USERD), and no guest can make one access run forever.

pub mod pbdma;
pub mod runlist;

use std::collections::BTreeMap;

use log::warn;

use crate::engine::Hw;
use crate::hw::engines::ENGINES;
use crate::hw::event::ModelEvent;
use crate::hw::ramin;
use crate::mem::{GpuMemory, Target};
use crate::mmu::tlb::ClientKind;
use crate::mmu::walk::Pdb;

pub use pbdma::ChannelFault;
use pbdma::{ChanCtx, Effects, Exec, Outcome};
use runlist::RunlistError;

/// Channels (gv100 dev_fifo's NUM_CHANNELS reset value; GP100 assumed the same).
pub const CHANNELS: u32 = 4096;
/// PBDMAs: one per runlist (our choice).
pub const PBDMAS: u32 = 3;
/// Runlists (one per engine in TOP).
pub const RUNLISTS: usize = ENGINES.len();

/// Register offsets.
pub mod regs {
    /// CFG0.
    pub const CFG0: u32 = 0x002004;
    /// First offset of PFIFO's own register block (nouveau `gk104_fifo`: 0x002000..).
    pub const PFIFO_BASE: u32 = 0x002000;
    /// End of the block (PFIFO's PRI station decodes 0x002000..0x003fff).
    pub const PFIFO_END: u32 = 0x004000;
    /// CFG1.
    pub const CFG1: u32 = 0x002008;
    /// INTR_0.
    pub const INTR_0: u32 = 0x002100;
    /// INTR_EN_0.
    pub const INTR_EN_0: u32 = 0x002140;
    /// BAR1_BASE (USERD).
    pub const BAR1_BASE: u32 = 0x002254;
    /// Interrupt detail registers nouveau's handler reads (SCHED_ERROR code, CHSW, fault units).
    pub const INTR_DETAIL: [u32; 4] = [0x00252c, 0x00254c, 0x00256c, 0x00259c];
    /// RUNLIST_BASE.
    pub const RUNLIST_BASE: u32 = 0x002270;
    /// RUNLIST (submit).
    pub const RUNLIST: u32 = 0x002274;
    /// RUNLIST's runlist id (23:20).
    pub const RUNLIST_ID: crate::hw::field::Field = crate::hw::field::Field::new(20, 4);
    /// RUNLIST's entry count (15:0).
    pub const RUNLIST_COUNT: crate::hw::field::Field = crate::hw::field::Field::new(0, 16);
    /// Per-runlist base read-back.
    pub const ENG_RUNLIST_BASE: u32 = 0x002280;
    /// Per-runlist length and PENDING.
    pub const ENG_RUNLIST: u32 = 0x002284;
    /// PBDMA_MAP.
    pub const PBDMA_MAP: u32 = 0x002390;
    /// ERROR_SCHED_DISABLE.
    pub const ERROR_SCHED_DISABLE: u32 = 0x00262c;
    /// SCHED_DISABLE.
    pub const SCHED_DISABLE: u32 = 0x002630;
    /// PREEMPT.
    pub const PREEMPT: u32 = 0x002634;
    /// ENGINE_STATUS.
    pub const ENGINE_STATUS: u32 = 0x002640;
    /// Runlist interrupt (written by nouveau to acknowledge).
    pub const INTR_RUNLIST: u32 = 0x002a00;
    /// Written by `gk104_fifo_init_pbdmas` (mask 0xbfffffff).
    pub const UNK_2A04: u32 = 0x002a04;
    /// PBDMA_STATUS.
    pub const PBDMA_STATUS: u32 = 0x003080;
    /// First PBDMA register block.
    pub const PBDMA_BASE: u32 = 0x040000;
    /// Stride between PBDMAs.
    pub const PBDMA_STRIDE: u32 = 0x2000;
    /// PCCSR channel RAM.
    pub const PCCSR: u32 = 0x800000;
    /// Bytes per channel in PCCSR (CHANNEL_INST, then CHANNEL).
    pub const PCCSR_STRIDE: u32 = 8;
}

/// FIFO interrupt bits (INTR_0).
pub mod intr {
    /// CHANNEL_INTR: the non-stall interrupt (`gk104_fifo_intr`, nvgpu `channel_intr_pending`).
    pub const NONSTALL: u32 = 1 << 31;
}

/// PBDMA registers nouveau writes (relative to the PBDMA's base).
const PBDMA_REGS: [u32; 8] = [0x0c0, 0x0c4, 0x108, 0x10c, 0x12c, 0x13c, 0x148, 0x14c];

/// Pushbuffer dwords the host may consume per device access (bounds one access's work).
pub const BUDGET_PER_ACCESS: u64 = 1 << 16;

#[derive(Debug, Clone, Default)]
struct Chan {
    inst: u32,
    enabled: bool,
    runlist: Option<u8>,
    exec: Option<Box<Exec>>,
    error: bool,
}

#[derive(Debug, Clone, Default)]
struct Runlist {
    base: u32,
    length: u32,
    chans: Vec<u16>,
}

/// What the host did during one [`Fifo::run`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Merged effects of every channel that ran.
    pub effects: Effects,
    /// Channels still with work (out of budget or blocked).
    pub pending: bool,
}

/// The host.
#[derive(Debug, Clone)]
pub struct Fifo {
    chans: BTreeMap<u16, Chan>,
    runlists: Vec<Runlist>,
    runlist_base: u32,
    intr: u32,
    intr_en: u32,
    bar1_base: u32,
    sched_disable: u32,
    unk_2a04: u32,
    pbdma: Vec<[u32; PBDMA_REGS.len()]>,
    events: Vec<ModelEvent>,
    /// Set when something may have made a channel runnable.
    kicked: bool,
    /// Channels that may have work (bound, enabled, on a runlist).
    active: Vec<u16>,
}

impl Default for Fifo {
    fn default() -> Self {
        Self::new()
    }
}

impl Fifo {
    /// The host after reset: no channels bound, no runlists.
    pub fn new() -> Self {
        Fifo {
            chans: BTreeMap::new(),
            runlists: vec![Runlist::default(); RUNLISTS],
            runlist_base: 0,
            intr: 0,
            intr_en: 0,
            bar1_base: 0,
            sched_disable: 0,
            unk_2a04: 0,
            pbdma: vec![[0; PBDMA_REGS.len()]; PBDMAS as usize],
            events: Vec::new(),
            kicked: false,
            active: Vec::new(),
        }
    }

    /// Back to reset (PMC_ENABLE's PFIFO bit cleared, or a device reset).
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Whether `offset` belongs to PFIFO, its PBDMAs or PCCSR.
    pub fn contains(offset: u32) -> bool {
        Self::ranges().iter().any(|r| r.contains(&offset))
    }

    /// PFIFO's BAR0 ranges: its own block, the PBDMAs, PCCSR (in that order; the device's
    /// map gives the replayable fault buffer's registers inside the first to that unit).
    pub fn ranges() -> [std::ops::Range<u32>; 3] {
        [
            regs::PFIFO_BASE..regs::PFIFO_END,
            regs::PBDMA_BASE..regs::PBDMA_BASE + PBDMAS * regs::PBDMA_STRIDE,
            regs::PCCSR..regs::PCCSR + CHANNELS * regs::PCCSR_STRIDE,
        ]
    }

    /// The FIFO's PMC interrupt line (PMC_INTR_0 bit 8, `gp100_mc_intrs`).
    pub fn pending(&self) -> bool {
        self.intr & self.intr_en != 0
    }

    /// Events since the last call (runlist rejections, channel errors).
    pub fn take_events(&mut self) -> Vec<ModelEvent> {
        std::mem::take(&mut self.events)
    }

    /// Marks that a channel may have been kicked (a write reached memory or a register
    /// that can make work runnable).
    pub fn kick(&mut self) {
        if !self.active.is_empty() {
            self.kicked = true;
        }
    }

    /// Whether [`Fifo::run`] has anything to look at.
    pub fn wants_run(&self) -> bool {
        self.kicked
    }

    fn pbdma_reg(offset: u32) -> Option<(usize, usize)> {
        let rel = offset.checked_sub(regs::PBDMA_BASE)?;
        let p = (rel / regs::PBDMA_STRIDE) as usize;
        let r = rel % regs::PBDMA_STRIDE;
        let i = PBDMA_REGS.iter().position(|&x| x == r)?;
        (p < PBDMAS as usize).then_some((p, i))
    }

    fn pccsr(offset: u32) -> Option<(u16, bool)> {
        let rel = offset.checked_sub(regs::PCCSR)?;
        (rel < CHANNELS * regs::PCCSR_STRIDE && rel % 4 == 0).then_some((
            (rel / regs::PCCSR_STRIDE) as u16,
            rel % regs::PCCSR_STRIDE == 4,
        ))
    }

    fn per(offset: u32, base: u32, stride: u32, n: u32) -> Option<usize> {
        let rel = offset.checked_sub(base)?;
        (rel % stride == 0 && rel / stride < n).then_some((rel / stride) as usize)
    }

    /// A register read; None if not decoded.
    pub fn read32(&self, offset: u32) -> Option<u32> {
        use regs::*;
        if let Some((chid, ctl)) = Self::pccsr(offset) {
            let c = self.chans.get(&chid);
            return Some(match (c, ctl) {
                (None, _) => 0,
                (Some(c), false) => c.inst,
                (Some(c), true) => {
                    let w = ramin::CHANNEL_ENABLE.set32(0, u32::from(c.enabled));
                    ramin::CHANNEL_RUNLIST.set32(w, u32::from(c.runlist.unwrap_or(0)))
                }
            });
        }
        if let Some((p, i)) = Self::pbdma_reg(offset) {
            return Some(self.pbdma[p][i]);
        }
        if let Some(r) = Self::per(offset, ENG_RUNLIST_BASE, 8, RUNLISTS as u32) {
            return Some(self.runlists[r].base);
        }
        if let Some(r) = Self::per(offset, ENG_RUNLIST, 8, RUNLISTS as u32) {
            // PENDING (bit 20) is never set after a submit: the list was processed in it.
            return Some(self.runlists[r].length);
        }
        if let Some(p) = Self::per(offset, PBDMA_MAP, 4, PBDMAS) {
            return Some(1 << p);
        }
        if Self::per(offset, ENGINE_STATUS, 8, RUNLISTS as u32).is_some()
            || Self::per(offset, PBDMA_STATUS, 4, PBDMAS).is_some()
        {
            return Some(0);
        }
        Some(match offset {
            CFG0 => PBDMAS,
            CFG1 => CHANNELS,
            INTR_0 => self.intr,
            INTR_EN_0 => self.intr_en,
            BAR1_BASE => self.bar1_base,
            RUNLIST_BASE => self.runlist_base,
            SCHED_DISABLE => self.sched_disable,
            ERROR_SCHED_DISABLE | PREEMPT | INTR_RUNLIST | RUNLIST => 0,
            UNK_2A04 => self.unk_2a04,
            o if INTR_DETAIL.contains(&o) => 0,
            _ => return None,
        })
    }

    /// A register write; false if not decoded. Runlist submits read the list from `mem`.
    pub fn write32<M: GpuMemory + ?Sized>(&mut self, offset: u32, v: u32, mem: &M) -> bool {
        use regs::*;
        if let Some((chid, ctl)) = Self::pccsr(offset) {
            let c = self.chans.entry(chid).or_default();
            if ctl {
                if ramin::CHANNEL_ENABLE_SET.is_set(u64::from(v)) {
                    c.enabled = true;
                    c.error = false;
                }
                if ramin::CHANNEL_ENABLE_CLR.is_set(u64::from(v)) {
                    c.enabled = false;
                }
            } else {
                if c.inst != v {
                    // A new instance block is a new channel context.
                    c.exec = None;
                    c.error = false;
                }
                c.inst = v;
            }
            self.refresh_active();
            return true;
        }
        if let Some((p, i)) = Self::pbdma_reg(offset) {
            // 0x108 and 0x148 are interrupt status: write one to clear.
            if matches!(PBDMA_REGS[i], 0x108 | 0x148) {
                self.pbdma[p][i] &= !v;
            } else {
                self.pbdma[p][i] = v;
            }
            return true;
        }
        match offset {
            INTR_0 => self.intr &= !v,
            INTR_EN_0 => self.intr_en = v,
            BAR1_BASE => self.bar1_base = v,
            RUNLIST_BASE => self.runlist_base = v,
            RUNLIST => self.submit(v, mem),
            SCHED_DISABLE => {
                self.sched_disable = v;
                self.refresh_active();
            }
            PREEMPT | ERROR_SCHED_DISABLE | INTR_RUNLIST => {}
            UNK_2A04 => self.unk_2a04 = v,
            CFG0 | CFG1 => {}
            o if INTR_DETAIL.contains(&o) => {}
            o if Self::per(o, ENG_RUNLIST_BASE, 8, RUNLISTS as u32).is_some()
                || Self::per(o, ENG_RUNLIST, 8, RUNLISTS as u32).is_some() => {}
            _ => return false,
        }
        true
    }

    fn submit<M: GpuMemory + ?Sized>(&mut self, v: u32, mem: &M) {
        let id = regs::RUNLIST_ID.get32(v) as usize;
        let count = regs::RUNLIST_COUNT.get32(v);
        if id >= RUNLISTS {
            warn!("runlist {id} submitted, but the GPU has {RUNLISTS} runlists: ignored");
            self.events.push(ModelEvent::RunlistRefused {
                runlist: id as u8,
                why: RunlistError::NoSuchRunlist,
            });
            return;
        }
        let base = self.runlist_base;
        let Some(target) = Target::from_target_field(u64::from(ramin::TARGET.get32(base))) else {
            self.events.push(ModelEvent::RunlistRefused {
                runlist: id as u8,
                why: RunlistError::BaseTarget,
            });
            return;
        };
        let addr = ramin::ptr_address(base);
        let chans = match runlist::parse(mem, target, addr, count) {
            Ok(l) => l,
            Err(e) => {
                warn!("runlist {id} rejected: {e}");
                self.events.push(ModelEvent::RunlistRefused {
                    runlist: id as u8,
                    why: e,
                });
                return;
            }
        };
        let rl = &mut self.runlists[id];
        rl.base = self.runlist_base;
        rl.length = count;
        for c in &rl.chans {
            if let Some(ch) = self.chans.get_mut(c) {
                if ch.runlist == Some(id as u8) {
                    ch.runlist = None;
                }
            }
        }
        rl.chans = chans.iter().map(|c| c.chid).collect();
        for c in &chans {
            self.chans.entry(c.chid).or_default().runlist = Some(id as u8);
        }
        self.events.push(ModelEvent::RunlistSubmitted {
            runlist: id as u8,
            channels: chans.len() as u32,
        });
        self.refresh_active();
    }

    fn refresh_active(&mut self) {
        self.active = self
            .chans
            .iter()
            .filter(|(_, c)| {
                c.enabled
                    && !c.error
                    && ramin::BIND.is_set(u64::from(c.inst))
                    && c.runlist
                        .is_some_and(|r| self.sched_disable & (1 << r) == 0)
            })
            .map(|(&id, _)| id)
            .collect();
        self.kicked = !self.active.is_empty();
    }

    /// Reads the channel's instance block and RAMFC.
    fn context(&self, hw: &Hw<'_>, chid: u16, c: &Chan) -> Result<ChanCtx, ChannelFault> {
        let target = Target::from_target_field(u64::from(ramin::TARGET.get32(c.inst)))
            .ok_or(ChannelFault::InstTarget)?;
        let inst = ramin::ptr_address(c.inst);
        let r = |off: u64| {
            hw.phys
                .read_u32(target, inst + off)
                .map_err(ChannelFault::InstUnreadable)
        };
        let userd_lo = r(ramin::RAMFC_USERD_LO)?;
        let userd_hi = r(ramin::RAMFC_USERD_HI)?;
        let userd_target = Target::from_target_field(ramin::USERD_TARGET.get(u64::from(userd_lo)))
            .ok_or(ChannelFault::UserdTarget)?;
        let gp_lo = r(ramin::RAMFC_GP_BASE)?;
        let gp_hi = r(ramin::RAMFC_GP_BASE_HI)?;
        let pdb_word = u64::from(r(ramin::INST_PDB)?) | (u64::from(r(ramin::INST_PDB + 4)?) << 32);
        let pdb = Pdb::from_instance_word(pdb_word).ok_or(ChannelFault::NoPageDirectory)?;
        let limit2 = ramin::GP_BASE_HI_LIMIT2.get32(gp_hi);
        let runlist = c.runlist.unwrap_or(0);
        Ok(ChanCtx {
            chid,
            pdb,
            userd: (userd_target, ramin::userd_address(userd_lo, userd_hi)),
            // NV_PPBDMA_GP_BASE_HI: OFFSET 7:0 (VA bits 39:32), LIMIT2 20:16 (open-gpu-doc
            // gm107 pbdma hwref; the same on Pascal): the host fetches with 40-bit addresses.
            // Bits nouveau writes above (upper_32_bits of a higher VA) are not part of it.
            gp_base: ramin::gp_base(gp_lo, gp_hi),
            gp_base_hi_ignored: ramin::GP_BASE_HI_IGNORED.get32(gp_hi) as u8,
            gp_entries: 1 << limit2,
            privileged: ramin::CONFIG_PRIVILEGED.is_set(u64::from(r(ramin::RAMFC_CONFIG)?)),
            ce_client: ce_client(runlist),
        })
    }

    /// Runs runnable channels within `budget` pushbuffer dwords.
    pub fn run(&mut self, hw: &mut Hw<'_>, mut budget: u64) -> RunReport {
        let mut report = RunReport::default();
        if !self.kicked {
            return report;
        }
        self.kicked = false;
        let active = self.active.clone();
        for chid in active {
            let Some(c) = self.chans.get(&chid) else {
                continue;
            };
            let ctx = match self.context(hw, chid, c) {
                Ok(x) => x,
                Err(why) => {
                    self.channel_error(chid, why);
                    continue;
                }
            };
            let c = self.chans.get_mut(&chid).expect("present");
            let exec = c.exec.get_or_insert_with(Default::default);
            if !exec.has_work(hw, &ctx) {
                continue;
            }
            let mut fx = Effects::default();
            let out = exec.run(hw, &ctx, &mut budget, &mut fx);
            merge(&mut report.effects, &fx);
            match out {
                Outcome::Idle => {}
                Outcome::Blocked | Outcome::Budget => report.pending = true,
                Outcome::Error(why) => self.channel_error(chid, why),
            }
        }
        if report.effects.nonstall {
            self.intr |= intr::NONSTALL;
        }
        if report.pending {
            self.kicked = true;
        }
        report
    }

    fn channel_error(&mut self, chid: u16, why: ChannelFault) {
        warn!("channel {chid} stopped: {why}");
        if let Some(c) = self.chans.get_mut(&chid) {
            c.error = true;
        }
        self.events.push(ModelEvent::ChannelStopped { chid, why });
        self.refresh_active();
    }

    /// The PCCSR instance word of channel `chid` (PTR 27:0, TARGET 29:28, BIND 31).
    pub fn channel_inst(&self, chid: u32) -> Option<u32> {
        let c = self.chans.get(&u16::try_from(chid).ok()?)?;
        ramin::BIND.is_set(u64::from(c.inst)).then_some(c.inst)
    }

    /// Channels bound, enabled and on a runlist.
    pub fn active_channels(&self) -> &[u16] {
        &self.active
    }
}

/// The copy-engine hub client a runlist's channels reach (`NV_PFAULT_CLIENT_HUB_CE0` 1,
/// `CE1` 2, `CE2`/GRCE 0x18 on the GR runlist; gp100 `dev_fault.h`).
fn ce_client(runlist: u8) -> ClientKind {
    match runlist {
        1 => ClientKind::Hub(0x01),
        2 => ClientKind::Hub(0x02),
        _ => ClientKind::Hub(0x18),
    }
}

fn merge(a: &mut Effects, b: &Effects) {
    a.nonstall |= b.nonstall;
    a.tlb_invalidate |= b.tlb_invalidate;
    a.ce_bytes += b.ce_bytes;
    a.ce_work += b.ce_work;
    a.dwords += b.dwords;
    a.gp_entries += b.gp_entries;
    a.releases += b.releases;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::VidMem;

    /// A rejected runlist submission is a typed `RunlistRefused` event: a runlist id the GPU
    /// does not have, RUNLIST_BASE target 1, and a list outside memory.
    #[test]
    fn rejected_runlists_are_refused_with_a_typed_reason() {
        let mem = VidMem::new(1 << 20);
        let mut f = Fifo::new();
        let submit = |f: &mut Fifo, id: u32, count: u32| {
            let v = regs::RUNLIST_COUNT.set32(regs::RUNLIST_ID.set32(0, id), count);
            assert!(f.write32(regs::RUNLIST, v, &mem));
        };
        submit(&mut f, RUNLISTS as u32, 1);
        f.write32(regs::RUNLIST_BASE, ramin::TARGET.set32(0, 1), &mem);
        submit(&mut f, 1, 1);
        // Video memory, PTR 0x0fff_ffff: the list's first entry is far beyond 1 MiB.
        f.write32(regs::RUNLIST_BASE, 0x0fff_ffff, &mem);
        submit(&mut f, 1, 1);
        assert_eq!(
            f.take_events(),
            vec![
                ModelEvent::RunlistRefused {
                    runlist: RUNLISTS as u8,
                    why: RunlistError::NoSuchRunlist,
                },
                ModelEvent::RunlistRefused {
                    runlist: 1,
                    why: RunlistError::BaseTarget,
                },
                ModelEvent::RunlistRefused {
                    runlist: 1,
                    why: RunlistError::Unreadable(0),
                },
            ]
        );
    }
}
