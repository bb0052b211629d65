//! The engines our GP100 has, as TOP's DEVICE_INFO reports them and PFIFO schedules them
//! (one runlist each). The values and their sources are documented in [`crate::regs::top`],
//! which serves them; PFIFO sizes its runlists from [`ENGINES`].

/// An engine as DEVICE_INFO describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineInfo {
    /// ENGINE_TYPE (0 GR, 1 COPY0, 2 COPY1, …).
    pub engine_type: u32,
    /// PRI base of its registers.
    pub pri_base: u32,
    /// MMU fault id (`NV_PFAULT_MMU_ENG_ID_*`).
    pub fault_id: u32,
    /// Host engine id.
    pub engine: u32,
    /// Runlist it is scheduled on.
    pub runlist: u32,
    /// PMC_INTR bit.
    pub intr: u32,
    /// PMC_ENABLE bit.
    pub reset: u32,
}

/// GR: the graphics/compute engine.
pub const ENGINE_GR: EngineInfo = EngineInfo {
    engine_type: 0,
    pri_base: 0x400000,
    fault_id: 0,
    engine: 0,
    runlist: 0,
    intr: 12,
    reset: 12,
};
/// CE0: copy engine 0.
pub const ENGINE_CE0: EngineInfo = EngineInfo {
    engine_type: 1,
    pri_base: 0x104000,
    fault_id: 21,
    engine: 1,
    runlist: 1,
    intr: 5,
    reset: 6,
};
/// CE1: copy engine 1.
pub const ENGINE_CE1: EngineInfo = EngineInfo {
    engine_type: 2,
    pri_base: 0x104000,
    fault_id: 22,
    engine: 2,
    runlist: 2,
    intr: 6,
    reset: 7,
};
/// The engines our GP100 has, in DEVICE_INFO order.
pub const ENGINES: [EngineInfo; 3] = [ENGINE_GR, ENGINE_CE0, ENGINE_CE1];
