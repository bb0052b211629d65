// Copyright © 2021 Intel Corporation
//
// SPDX-License-Identifier: Apache-2.0
//

use bitflags::bitflags;
use libc::{c_void, iovec, EINVAL};
use libc::{sysconf, _SC_PAGESIZE};
use std::ffi::CString;
use std::fs::File;
use std::io::{IoSlice, Read, Write};
use std::mem::size_of;
use std::num::Wrapping;
use std::os::fd::OwnedFd;
use std::os::unix::{
    io::{FromRawFd, RawFd},
    net::{UnixListener, UnixStream},
};
use std::path::{Path, PathBuf};
use thiserror::Error;
use vfio_bindings::bindings::vfio::*;
use vm_memory::{ByteValued, FileOffset};
use vmm_sys_util::sock_ctrl_msg::ScmSocket;

#[macro_use]
extern crate serde_derive;

#[macro_use]
extern crate log;

#[allow(dead_code)]
#[repr(u16)]
#[derive(Clone, Copy, Debug, Default, enumn::N)]
pub enum Command {
    #[default]
    Unknown = 0,
    Version = 1,
    DmaMap = 2,
    DmaUnmap = 3,
    DeviceGetInfo = 4,
    DeviceGetRegionInfo = 5,
    GetRegionIoFds = 6,
    GetIrqInfo = 7,
    SetIrqs = 8,
    RegionRead = 9,
    RegionWrite = 10,
    DmaRead = 11,
    DmaWrite = 12,
    DeviceReset = 13,
    UserDirtyPages = 14,
}

#[allow(dead_code)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum HeaderFlags {
    #[default]
    Command = 0,
    Reply = 1,
    NoReply = 1 << 4,
    Error = 1 << 5,
}

#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
struct Header {
    message_id: u16,
    command: u16,
    message_size: u32,
    flags: u32,
    error: u32,
}

impl Header {
    fn no_reply(&self) -> bool {
        self.flags & HeaderFlags::NoReply as u32 != 0
    }
}

#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
struct Version {
    header: Header,
    major: u16,
    minor: u16,
}

#[derive(Serialize, Deserialize, Debug)]
struct MigrationCapabilities {
    pgsize: u32,
}

const fn default_max_msg_fds() -> u32 {
    1
}

const fn default_max_data_xfer_size() -> u32 {
    1048576
}

#[inline(always)]
fn pagesize() -> u32 {
    // SAFETY: sysconf
    unsafe { sysconf(_SC_PAGESIZE) as u32 }
}

fn default_migration_capabilities() -> MigrationCapabilities {
    MigrationCapabilities { pgsize: pagesize() }
}

bitflags! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct DmaMapFlags: u32 {
        const READ = 1 << 0;
        const WRITE = 1 << 1;
        const READ_WRITE = Self::READ.bits() | Self::WRITE.bits();

        // There might be unknown bits and we don't want bitflags to clear them.
        const _ = !0;
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct DmaUnmapFlags: u32 {
        const GET_DIRTY_PAGE_INFO = 1 << 1;
        const UNMAP_ALL = 1 << 2;

        // See above.
        const _ = !0;
    }
}

#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
struct DmaMap {
    header: Header,
    argsz: u32,
    flags: u32,
    offset: u64,
    address: u64,
    size: u64,
}

#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
struct DmaUnmap {
    header: Header,
    argsz: u32,
    flags: u32,
    address: u64,
    size: u64,
}

#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
struct DeviceGetInfo {
    header: Header,
    argsz: u32,
    flags: u32,
    num_regions: u32,
    num_irqs: u32,
}

#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
struct DeviceGetRegionInfo {
    header: Header,
    region_info: vfio_region_info,
}

#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
struct RegionAccess {
    header: Header,
    offset: u64,
    region: u32,
    count: u32,
}

#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
struct GetIrqInfo {
    header: Header,
    argsz: u32,
    flags: u32,
    index: u32,
    count: u32,
}

#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
struct SetIrqs {
    header: Header,
    argsz: u32,
    flags: u32,
    index: u32,
    start: u32,
    count: u32,
}

#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
struct DeviceReset {
    header: Header,
}

// SAFETY: data structure only contain a series of integers
unsafe impl ByteValued for Header {}
// SAFETY: data structure only contain a series of integers
unsafe impl ByteValued for Version {}
// SAFETY: data structure only contain a series of integers
unsafe impl ByteValued for DmaMap {}
// SAFETY: data structure only contain a series of integers
unsafe impl ByteValued for DmaUnmap {}
// SAFETY: data structure only contain a series of integers
unsafe impl ByteValued for DeviceGetInfo {}
// SAFETY: data structure only contain a series of integers
unsafe impl ByteValued for DeviceGetRegionInfo {}
// SAFETY: data structure only contain a series of integers
unsafe impl ByteValued for RegionAccess {}
// SAFETY: data structure only contain a series of integers
unsafe impl ByteValued for GetIrqInfo {}
// SAFETY: data structure only contain a series of integers
unsafe impl ByteValued for SetIrqs {}
// SAFETY: data structure only contain a series of integers
unsafe impl ByteValued for DeviceReset {}

#[derive(Serialize, Deserialize, Debug)]
struct Capabilities {
    #[serde(default = "default_max_msg_fds")]
    max_msg_fds: u32,
    #[serde(default = "default_max_data_xfer_size")]
    max_data_xfer_size: u32,
    #[serde(default = "default_migration_capabilities")]
    migration: MigrationCapabilities,
}

#[derive(Serialize, Deserialize, Debug, Default)]
struct CapabilitiesData {
    // Optional: a VERSION without capabilities (the protocol allows it) means the defaults.
    #[serde(default)]
    capabilities: Capabilities,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self {
            max_msg_fds: default_max_msg_fds(),
            max_data_xfer_size: default_max_data_xfer_size(),
            migration: default_migration_capabilities(),
        }
    }
}

pub struct Client {
    stream: UnixStream,
    next_message_id: Wrapping<u16>,
    num_irqs: u32,
    resettable: bool,
    regions: Vec<Region>,
}

#[derive(Debug)]
pub struct Region {
    pub flags: u32,
    pub index: u32,
    pub size: u64,
    pub file_offset: Option<FileOffset>,
    pub sparse_areas: Vec<vfio_region_sparse_mmap_area>,
}

#[derive(Clone, Copy, Debug)]
pub struct IrqInfo {
    pub index: u32,
    pub flags: u32,
    pub count: u32,
}

#[derive(Error, Debug)]
pub enum Error {
    #[error("Error connecting: {0}")]
    Connect(#[source] std::io::Error),
    #[error("Error serializing capabilities: {0}")]
    SerializeCapabilites(#[source] serde_json::Error),
    #[error("Error deserializing capabilities: {0}")]
    DeserializeCapabilites(#[source] serde_json::Error),
    #[error("Error writing to stream: {0}")]
    StreamWrite(#[source] std::io::Error),
    #[error("Error reading from stream: {0}")]
    StreamRead(#[source] std::io::Error),
    #[error("Error shutting down stream: {0}")]
    StreamShutdown(#[source] std::io::Error),
    #[error("Error writing with file descriptors: {0}")]
    SendWithFd(#[source] vmm_sys_util::errno::Error),
    #[error("Error reading with file descriptors: {0}")]
    ReceiveWithFd(#[source] vmm_sys_util::errno::Error),
    #[error("Not a PCI device")]
    NotPciDevice,
    #[error("Socket path already exists")]
    SocketPathExists,
    #[error("Error binding to socket: {0}")]
    SocketBind(#[source] std::io::Error),
    #[error("Error accepting connection: {0}")]
    SocketAccept(#[source] std::io::Error),
    #[error("Unknown command: {0}")]
    UnknownCommand(u16),
    #[error("Unsupported command: {0:?}")]
    UnsupportedCommand(Command),
    #[error("Unsupported feature")]
    UnsupportedFeature,
    #[error("Error from backend: {0}")]
    Backend(#[source] std::io::Error),
    #[error("Invalid input")]
    InvalidInput,
    #[error("No_reply bit unexpectedly set for command: {0:?}")]
    UnexpectedNoReply(Command),
    #[error("Message size {0} outside {min}..={MAX_MESSAGE_SIZE}", min = size_of::<Header>())]
    MessageSize(u32),
    #[error("Message too short for its command")]
    ShortMessage,
    #[error("Access of {0} bytes exceeds the maximum data transfer size")]
    TooLarge(u32),
    #[error("Bad VERSION: {0}")]
    BadVersion(&'static str),
}

impl Error {
    /// The errno an error reply carries for this error.
    fn errno(&self) -> i32 {
        match self {
            Error::Backend(e) => e.raw_os_error().unwrap_or(EINVAL),
            Error::UnknownCommand(_) | Error::UnsupportedCommand(_) | Error::UnsupportedFeature => {
                libc::ENOTSUP
            }
            Error::TooLarge(_) | Error::MessageSize(_) => libc::E2BIG,
            _ => EINVAL,
        }
    }
}

/// The largest message the server reads: a header, the largest command structure and
/// the largest data transfer it advertises (`max_data_xfer_size`). Anything larger is
/// refused before its body is allocated.
pub const MAX_MESSAGE_SIZE: u32 = default_max_data_xfer_size() + 4096;

/// Copies the command structure `T` (the message's header included) out of `msg`.
fn fill<T: ByteValued>(cmd: &mut T, msg: &[u8]) -> Result<(), Error> {
    let n = size_of::<T>();
    if msg.len() < n {
        return Err(Error::ShortMessage);
    }
    cmd.as_mut_slice()[size_of::<Header>()..].copy_from_slice(&msg[size_of::<Header>()..n]);
    Ok(())
}

/// The header every capability of a region begins with.
#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
struct CapabilityHeader {
    id: u16,
    version: u16,
    next: u32,
}

/// Fixed-size header at the start of a sparse mmap capability.
#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
struct SparseMmapHeader {
    nr_areas: u32,
    reserved: u32,
}

// SAFETY: data structure only contain a series of integers
unsafe impl ByteValued for CapabilityHeader {}
// SAFETY: data structure only contain a series of integers
unsafe impl ByteValued for SparseMmapHeader {}

/// Error encountered while walking a region's capability list.
#[derive(Debug, Error)]
enum CapabilityError {
    #[error("offset {0} does not advance")]
    NotAdvancing(usize),
    #[error("offset {offset} is outside the {len} bytes of capability data")]
    Outside { offset: usize, len: usize },
    #[error("capability at offset {offset} is truncated")]
    Truncated {
        offset: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("sparse mmap capability at offset {offset} claims {count} areas, which do not fit")]
    AreaCount {
        offset: usize,
        count: usize,
        #[source]
        source: std::io::Error,
    },
}

impl Client {
    pub fn new(path: &Path) -> Result<Client, Error> {
        let stream = UnixStream::connect(path).map_err(Error::Connect)?;

        let mut client = Client {
            next_message_id: Wrapping(0),
            stream,
            num_irqs: 0,
            resettable: false,
            regions: Vec::new(),
        };

        client.negotiate_version()?;

        client.regions = client.get_regions()?;

        Ok(client)
    }

    fn negotiate_version(&mut self) -> Result<(), Error> {
        let caps = CapabilitiesData::default();

        let version_data = serde_json::to_string(&caps).map_err(Error::SerializeCapabilites)?;

        let version = Version {
            header: Header {
                message_id: self.next_message_id.0,
                command: Command::Version as u16,
                flags: HeaderFlags::Command as u32,
                message_size: (size_of::<Version>() + version_data.len() + 1) as u32,
                ..Default::default()
            },
            major: 0,
            minor: 1,
        };
        debug!("Command: {version:?}");

        let version_data = CString::new(version_data.as_bytes()).unwrap();
        let bufs = vec![
            IoSlice::new(version.as_slice()),
            IoSlice::new(version_data.as_bytes_with_nul()),
        ];

        // TODO: Use write_all_vectored() when ready
        let _ = self
            .stream
            .write_vectored(&bufs)
            .map_err(Error::StreamWrite)?;

        debug!(
            "Sent client version information: major = {} minor = {} capabilities = {:?}",
            version.major, version.minor, caps.capabilities
        );

        self.next_message_id += Wrapping(1);

        let mut server_version: Version = Version::default();
        self.stream
            .read_exact(server_version.as_mut_slice())
            .map_err(Error::StreamRead)?;

        debug!("Reply: {server_version:?}");

        let mut server_version_data =
            vec![0; server_version.header.message_size as usize - size_of::<Version>()];
        self.stream
            .read_exact(server_version_data.as_mut_slice())
            .map_err(Error::StreamRead)?;

        let server_caps: CapabilitiesData =
            serde_json::from_slice(&server_version_data[0..server_version_data.len() - 1])
                .map_err(Error::DeserializeCapabilites)?;

        debug!(
            "Received server version information: major = {} minor = {} capabilities = {:?}",
            server_version.major, server_version.minor, server_caps.capabilities
        );

        Ok(())
    }

    pub fn dma_map(
        &mut self,
        offset: u64,
        address: u64,
        size: u64,
        fd: RawFd,
    ) -> Result<(), Error> {
        let dma_map = DmaMap {
            header: Header {
                message_id: self.next_message_id.0,
                command: Command::DmaMap as u16,
                flags: HeaderFlags::Command as u32,
                message_size: size_of::<DmaMap>() as u32,
                ..Default::default()
            },
            argsz: (size_of::<DmaMap>() - size_of::<Header>()) as u32,
            flags: DmaMapFlags::READ_WRITE.bits(),
            offset,
            address,
            size,
        };
        debug!("Command: {dma_map:?}");
        self.next_message_id += Wrapping(1);
        self.stream
            .send_with_fd(dma_map.as_slice(), fd)
            .map_err(Error::SendWithFd)?;

        let mut reply = Header::default();
        self.stream
            .read_exact(reply.as_mut_slice())
            .map_err(Error::StreamRead)?;
        debug!("Reply: {reply:?}");

        Ok(())
    }

    pub fn dma_unmap(&mut self, address: u64, size: u64) -> Result<(), Error> {
        let dma_unmap = DmaUnmap {
            header: Header {
                message_id: self.next_message_id.0,
                command: Command::DmaUnmap as u16,
                flags: HeaderFlags::Command as u32,
                message_size: size_of::<DmaUnmap>() as u32,
                ..Default::default()
            },
            argsz: (size_of::<DmaUnmap>() - size_of::<Header>()) as u32,
            flags: 0,
            address,
            size,
        };
        debug!("Command: {dma_unmap:?}");
        self.next_message_id += Wrapping(1);
        self.stream
            .write_all(dma_unmap.as_slice())
            .map_err(Error::StreamWrite)?;

        let mut reply = DmaUnmap::default();
        self.stream
            .read_exact(reply.as_mut_slice())
            .map_err(Error::StreamRead)?;
        debug!("Reply: {reply:?}");

        Ok(())
    }

    pub fn reset(&mut self) -> Result<(), Error> {
        let reset = DeviceReset {
            header: Header {
                message_id: self.next_message_id.0,
                command: Command::DeviceReset as u16,
                flags: HeaderFlags::Command as u32,
                message_size: size_of::<DeviceReset>() as u32,
                ..Default::default()
            },
        };
        debug!("Command: {reset:?}");
        self.next_message_id += Wrapping(1);
        self.stream
            .write_all(reset.as_slice())
            .map_err(Error::StreamWrite)?;

        let mut reply = Header::default();
        self.stream
            .read_exact(reply.as_mut_slice())
            .map_err(Error::StreamRead)?;
        debug!("Reply: {reply:?}");

        Ok(())
    }

    fn get_regions(&mut self) -> Result<Vec<Region>, Error> {
        let get_info = DeviceGetInfo {
            header: Header {
                message_id: self.next_message_id.0,
                command: Command::DeviceGetInfo as u16,
                flags: HeaderFlags::Command as u32,
                message_size: size_of::<DeviceGetInfo>() as u32,
                ..Default::default()
            },
            argsz: size_of::<DeviceGetInfo>() as u32,
            ..Default::default()
        };
        debug!("Command: {get_info:?}");
        self.next_message_id += Wrapping(1);

        self.stream
            .write_all(get_info.as_slice())
            .map_err(Error::StreamWrite)?;

        let mut reply = DeviceGetInfo::default();
        self.stream
            .read_exact(reply.as_mut_slice())
            .map_err(Error::StreamRead)?;
        debug!("Reply: {reply:?}");
        self.num_irqs = reply.num_irqs;

        if reply.flags & VFIO_DEVICE_FLAGS_PCI != VFIO_DEVICE_FLAGS_PCI {
            return Err(Error::NotPciDevice);
        }

        self.resettable = reply.flags & VFIO_DEVICE_FLAGS_RESET != VFIO_DEVICE_FLAGS_RESET;

        let num_regions = reply.num_regions;
        let mut regions = Vec::new();
        for index in 0..num_regions {
            let (region_info, fd, sparse_areas) = self.get_region_info(index)?;
            regions.push(Region {
                flags: region_info.flags,
                index: region_info.index,
                size: region_info.size,
                file_offset: fd.map(|fd| FileOffset::new(fd, region_info.offset)),
                sparse_areas,
            });
        }

        Ok(regions)
    }

    fn get_region_info(
        &mut self,
        index: u32,
    ) -> Result<
        (
            vfio_region_info,
            Option<File>,
            Vec<vfio_region_sparse_mmap_area>,
        ),
        Error,
    > {
        // Retrieve the region info without capability
        let mut get_region_info = DeviceGetRegionInfo {
            header: Header {
                message_id: self.next_message_id.0,
                command: Command::DeviceGetRegionInfo as u16,
                flags: HeaderFlags::Command as u32,
                message_size: std::mem::size_of::<DeviceGetRegionInfo>() as u32,
                ..Default::default()
            },
            region_info: vfio_region_info {
                argsz: size_of::<vfio_region_info>() as u32,
                index,
                ..Default::default()
            },
        };
        debug!("Command: {get_region_info:?}");
        self.next_message_id += Wrapping(1);

        self.stream
            .write_all(get_region_info.as_slice())
            .map_err(Error::StreamWrite)?;

        let mut reply = DeviceGetRegionInfo::default();
        let (_, fd) = self
            .stream
            .recv_with_fd(reply.as_mut_slice())
            .map_err(Error::ReceiveWithFd)?;
        debug!("Reply: {reply:?}");

        // Retrieve the region info again with capabilities if needed
        if reply.region_info.argsz > std::mem::size_of::<vfio_region_info>() as u32 {
            get_region_info.region_info.argsz = reply.region_info.argsz;
            debug!("Command: {get_region_info:?}");
            self.next_message_id += Wrapping(1);

            self.stream
                .write_all(get_region_info.as_slice())
                .map_err(Error::StreamWrite)?;

            let mut reply = DeviceGetRegionInfo::default();
            let (_, fd) = self
                .stream
                .recv_with_fd(reply.as_mut_slice())
                .map_err(Error::ReceiveWithFd)?;
            debug!("Reply: {reply:?}");

            let cap_size = reply.region_info.argsz - std::mem::size_of::<vfio_region_info>() as u32;
            assert_eq!(
                cap_size,
                reply.header.message_size - size_of::<DeviceGetRegionInfo>() as u32
            );
            let mut cap_data = vec![0; cap_size as usize];
            self.stream
                .read_exact(cap_data.as_mut_slice())
                .map_err(Error::StreamRead)?;

            let sparse_areas = Self::parse_region_caps(&cap_data, &reply.region_info)
                .inspect_err(|error| warn!("Region {index}: {error}"))
                .map_err(|_| Error::InvalidInput)?;

            Ok((reply.region_info, fd, sparse_areas))
        } else {
            Ok((reply.region_info, fd, Vec::new()))
        }
    }

    /// Collects the mmap-able areas of every sparse mmap capability in the
    /// list that follows `vfio_region_info` in a `DEVICE_GET_REGION_INFO`
    /// reply.
    ///
    /// Offsets in the list are relative to the start of the
    /// `vfio_region_info` structure, which `cap_data` does not include.
    fn parse_region_caps(
        cap_data: &[u8],
        region_info: &vfio_region_info,
    ) -> Result<Vec<vfio_region_sparse_mmap_area>, CapabilityError> {
        let mut sparse_areas = Vec::new();
        let mut next = region_info.cap_offset as usize;
        let mut previous = 0;

        while next != 0 {
            let offset = next;
            if next <= previous {
                return Err(CapabilityError::NotAdvancing(offset));
            }
            previous = next;

            let mut capability = next
                .checked_sub(size_of::<vfio_region_info>())
                .and_then(|from| cap_data.get(from..))
                .ok_or(CapabilityError::Outside {
                    offset,
                    len: cap_data.len(),
                })?;

            let header = CapabilityHeader::read_exact_from(&mut capability)
                .map_err(|source| CapabilityError::Truncated { offset, source })?;
            next = header.next as usize;

            if u32::from(header.id) != VFIO_REGION_INFO_CAP_SPARSE_MMAP {
                warn!(
                    "Ignoring unsupported vfio region capability (id = '{}')",
                    header.id
                );
                continue;
            }

            let sparse = SparseMmapHeader::read_exact_from(&mut capability)
                .map_err(|source| CapabilityError::Truncated { offset, source })?;
            let count = sparse.nr_areas as usize;

            for _ in 0..count {
                sparse_areas.push(vfio_region_sparse_mmap_area {
                    offset: u64::read_exact_from(&mut capability).map_err(|source| {
                        CapabilityError::AreaCount {
                            offset,
                            count,
                            source,
                        }
                    })?,
                    size: u64::read_exact_from(&mut capability).map_err(|source| {
                        CapabilityError::AreaCount {
                            offset,
                            count,
                            source,
                        }
                    })?,
                });
            }
        }

        Ok(sparse_areas)
    }

    pub fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> Result<(), Error> {
        let region_read = RegionAccess {
            header: Header {
                message_id: self.next_message_id.0,
                command: Command::RegionRead as u16,
                flags: HeaderFlags::Command as u32,
                message_size: size_of::<RegionAccess>() as u32,
                ..Default::default()
            },
            offset,
            count: data.len() as u32,
            region,
        };
        debug!("Command: {region_read:?}");
        self.next_message_id += Wrapping(1);
        self.stream
            .write_all(region_read.as_slice())
            .map_err(Error::StreamWrite)?;

        let mut reply = RegionAccess::default();
        self.stream
            .read_exact(reply.as_mut_slice())
            .map_err(Error::StreamRead)?;
        debug!("Reply: {reply:?}");
        self.stream.read_exact(data).map_err(Error::StreamRead)?;
        Ok(())
    }

    pub fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> Result<(), Error> {
        let region_write = RegionAccess {
            header: Header {
                message_id: self.next_message_id.0,
                command: Command::RegionWrite as u16,
                flags: HeaderFlags::Command as u32,
                message_size: (size_of::<RegionAccess>() + data.len()) as u32,
                ..Default::default()
            },
            offset,
            count: data.len() as u32,
            region,
        };
        debug!("Command: {region_write:?}");
        self.next_message_id += Wrapping(1);

        let bufs = vec![IoSlice::new(region_write.as_slice()), IoSlice::new(data)];

        // TODO: Use write_all_vectored() when ready
        let _ = self
            .stream
            .write_vectored(&bufs)
            .map_err(Error::StreamWrite)?;

        let mut reply = RegionAccess::default();
        self.stream
            .read_exact(reply.as_mut_slice())
            .map_err(Error::StreamRead)?;
        debug!("Reply: {reply:?}");
        Ok(())
    }

    pub fn get_irq_info(&mut self, index: u32) -> Result<IrqInfo, Error> {
        let get_irq_info = GetIrqInfo {
            header: Header {
                message_id: self.next_message_id.0,
                command: Command::GetIrqInfo as u16,
                flags: HeaderFlags::Command as u32,
                message_size: size_of::<GetIrqInfo>() as u32,
                ..Default::default()
            },
            argsz: (size_of::<GetIrqInfo>() - size_of::<Header>()) as u32,
            flags: 0,
            index,
            count: 0,
        };
        debug!("Command: {get_irq_info:?}");
        self.next_message_id += Wrapping(1);

        self.stream
            .write_all(get_irq_info.as_slice())
            .map_err(Error::StreamWrite)?;

        let mut reply = GetIrqInfo::default();
        self.stream
            .read_exact(reply.as_mut_slice())
            .map_err(Error::StreamRead)?;
        debug!("Reply: {reply:?}");

        Ok(IrqInfo {
            index: reply.index,
            flags: reply.flags,
            count: reply.count,
        })
    }

    pub fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: &[RawFd],
    ) -> Result<(), Error> {
        let set_irqs = SetIrqs {
            header: Header {
                message_id: self.next_message_id.0,
                command: Command::SetIrqs as u16,
                flags: HeaderFlags::Command as u32,
                message_size: size_of::<SetIrqs>() as u32,
                ..Default::default()
            },
            argsz: (size_of::<SetIrqs>() - size_of::<Header>()) as u32,
            flags,
            start,
            index,
            count,
        };
        debug!("Command: {set_irqs:?}");
        self.next_message_id += Wrapping(1);

        self.stream
            .send_with_fds(&[set_irqs.as_slice()], fds)
            .map_err(Error::SendWithFd)?;

        let mut reply = Header::default();
        self.stream
            .read_exact(reply.as_mut_slice())
            .map_err(Error::StreamRead)?;
        debug!("Reply: {reply:?}");

        Ok(())
    }

    pub fn region(&self, region_index: u32) -> Option<&Region> {
        self.regions
            .iter()
            .find(|&region| region.index == region_index)
    }

    pub fn resettable(&self) -> bool {
        self.resettable
    }

    pub fn shutdown(&self) -> Result<(), Error> {
        self.stream
            .shutdown(std::net::Shutdown::Both)
            .map_err(Error::StreamShutdown)
    }
}

pub trait ServerBackend {
    fn region_read(
        &mut self,
        _region: u32,
        _offset: u64,
        _data: &mut [u8],
    ) -> Result<(), std::io::Error>;
    fn region_write(
        &mut self,
        _region: u32,
        _offset: u64,
        _data: &[u8],
    ) -> Result<(), std::io::Error>;
    fn dma_map(
        &mut self,
        _flags: DmaMapFlags,
        _offset: u64,
        _address: u64,
        _size: u64,
        _fd: Option<File>,
    ) -> Result<(), std::io::Error>;
    fn dma_unmap(
        &mut self,
        _flags: DmaUnmapFlags,
        _address: u64,
        _size: u64,
    ) -> Result<(), std::io::Error>;
    fn reset(&mut self) -> Result<(), std::io::Error>;
    fn set_irqs(
        &mut self,
        _index: u32,
        _flags: u32,
        _start: u32,
        _count: u32,
        _fds: Vec<File>,
    ) -> Result<(), std::io::Error>;
}

#[derive(Clone, Copy)]
pub struct SparseArea {
    pub area: vfio_region_sparse_mmap_area,
}

#[derive(Clone)]
pub struct ServerRegion {
    pub region_info: vfio_region_info,
    pub sparse_areas: Vec<SparseArea>,
    pub mmap_fd: Option<RawFd>,
}

pub struct Server {
    listener: UnixListener,
    path: Option<PathBuf>,
    resettable: bool,
    irqs: Vec<IrqInfo>,
    regions: Vec<ServerRegion>,
}

impl Server {
    pub fn new(
        path: &Path,
        resettable: bool,
        irqs: Vec<IrqInfo>,
        regions: Vec<ServerRegion>,
    ) -> Result<Server, Error> {
        if path.exists() {
            return Err(Error::SocketPathExists);
        }

        let listener = UnixListener::bind(path).map_err(Error::SocketBind)?;

        Ok(Server {
            listener,
            path: Some(path.to_path_buf()),
            resettable,
            irqs,
            regions,
        })
    }

    pub fn from_owned_fd(
        fd: OwnedFd,
        resettable: bool,
        irqs: Vec<IrqInfo>,
        regions: Vec<ServerRegion>,
    ) -> Server {
        let listener = UnixListener::from(fd);

        Server {
            listener,
            path: None,
            resettable,
            irqs,
            regions,
        }
    }

    fn handle_command(
        &self,
        backend: &mut dyn ServerBackend,
        stream: &mut Replies<'_>,
        header: Header,
        msg: &[u8],
        fds: Vec<File>,
    ) -> Result<(), Error> {
        let command = Command::n(header.command).ok_or(Error::UnknownCommand(header.command))?;
        match command {
            Command::Unknown
            | Command::GetRegionIoFds
            | Command::DmaRead
            | Command::DmaWrite
            | Command::UserDirtyPages => {
                return Err(Error::UnsupportedCommand(command));
            }
            Command::Version => {
                if header.no_reply() {
                    return Err(Error::UnexpectedNoReply(Command::Version));
                }

                // TODO: Make version/capabilities configurable
                let mut client_version = Version {
                    header,
                    ..Default::default()
                };
                fill(&mut client_version, msg)?;
                // Protocol major version 0 is the only one there is.
                if client_version.major != 0 {
                    return Err(Error::BadVersion("major version is not 0"));
                }
                // The JSON capabilities are optional; when present they are one
                // NUL-terminated string filling the rest of the message.
                let raw_version_data = &msg[size_of::<Version>()..];
                let client_capabilities: CapabilitiesData = if raw_version_data.is_empty() {
                    serde_json::from_str("{}").map_err(Error::DeserializeCapabilites)?
                } else {
                    let text = std::ffi::CStr::from_bytes_with_nul(raw_version_data)
                        .map_err(|_| {
                            Error::BadVersion("capabilities are not one NUL-terminated string")
                        })?
                        .to_str()
                        .map_err(|_| Error::BadVersion("capabilities are not UTF-8"))?;
                    serde_json::from_str(text).map_err(Error::DeserializeCapabilites)?
                };

                info!(
                    "Received client version: major = {} minor = {} capabilities = {:?}",
                    client_version.major, client_version.minor, client_capabilities.capabilities,
                );

                let server_capabilities = CapabilitiesData::default();
                let server_version_data = serde_json::to_string(&server_capabilities)
                    .map_err(Error::SerializeCapabilites)?;
                let server_version = Version {
                    header: Header {
                        message_id: client_version.header.message_id,
                        command: Command::Version as u16,
                        flags: HeaderFlags::Reply as u32,
                        message_size: (size_of::<Version>() + server_version_data.len() + 1) as u32,
                        ..Default::default()
                    },
                    major: 0,
                    minor: 0,
                };

                let mut reply = server_version.as_slice().to_vec();
                reply.extend_from_slice(server_version_data.as_bytes());
                reply.push(0);
                stream.write_all(&reply).map_err(Error::StreamWrite)?;

                info!(
                    "Sent server version: major = {} minor = {} capabilities = {:?}",
                    server_version.major, server_version.minor, server_capabilities.capabilities
                );
            }
            Command::DmaMap => {
                let mut cmd = DmaMap {
                    header,
                    ..Default::default()
                };
                fill(&mut cmd, msg)?;

                let mut fds = fds;

                // The specification demands that the caller passes 0
                // or 1 file descriptor.
                if fds.len() > 1 {
                    return Err(Error::InvalidInput);
                }

                backend
                    .dma_map(
                        DmaMapFlags::from_bits_truncate(cmd.flags),
                        cmd.offset,
                        cmd.address,
                        cmd.size,
                        fds.pop(),
                    )
                    .map_err(Error::Backend)?;

                if header.no_reply() {
                    return Ok(());
                }

                let reply = Header {
                    message_id: cmd.header.message_id,
                    command: Command::DmaMap as u16,
                    flags: HeaderFlags::Reply as u32,
                    message_size: size_of::<Header>() as u32,
                    ..Default::default()
                };
                stream
                    .write_all(reply.as_slice())
                    .map_err(Error::StreamWrite)?;
            }
            Command::DmaUnmap => {
                let mut cmd = DmaUnmap {
                    header,
                    ..Default::default()
                };
                fill(&mut cmd, msg)?;

                backend
                    .dma_unmap(
                        DmaUnmapFlags::from_bits_truncate(cmd.flags),
                        cmd.address,
                        cmd.size,
                    )
                    .map_err(Error::Backend)?;

                if header.no_reply() {
                    return Ok(());
                }

                let reply = DmaUnmap {
                    header: Header {
                        message_id: cmd.header.message_id,
                        command: Command::DmaUnmap as u16,
                        flags: HeaderFlags::Reply as u32,
                        message_size: size_of::<DmaUnmap>() as u32,
                        ..Default::default()
                    },
                    argsz: cmd.argsz,
                    flags: cmd.flags,
                    address: cmd.address,
                    size: cmd.size,
                };
                stream
                    .write_all(reply.as_slice())
                    .map_err(Error::StreamWrite)?;
            }
            Command::DeviceGetInfo => {
                if header.no_reply() {
                    return Err(Error::UnexpectedNoReply(Command::DeviceGetInfo));
                }

                let mut cmd = DeviceGetInfo {
                    header,
                    ..Default::default()
                };
                fill(&mut cmd, msg)?;

                let reply = DeviceGetInfo {
                    header: Header {
                        message_id: cmd.header.message_id,
                        command: Command::DeviceGetInfo as u16,
                        flags: HeaderFlags::Reply as u32,
                        message_size: size_of::<DeviceGetInfo>() as u32,
                        ..Default::default()
                    },
                    argsz: size_of::<DeviceGetInfo>() as u32 - size_of::<Header>() as u32,
                    // TODO: Consider non-PCI devices
                    flags: VFIO_DEVICE_FLAGS_PCI
                        | if self.resettable {
                            VFIO_DEVICE_FLAGS_RESET
                        } else {
                            0
                        },
                    num_regions: self.regions.len() as u32,
                    num_irqs: self.irqs.len() as u32,
                };
                stream
                    .write_all(reply.as_slice())
                    .map_err(Error::StreamWrite)?;
            }
            Command::DeviceGetRegionInfo => {
                if header.no_reply() {
                    return Err(Error::UnexpectedNoReply(Command::DeviceGetRegionInfo));
                }

                let mut cmd = DeviceGetRegionInfo {
                    header,
                    ..Default::default()
                };
                fill(&mut cmd, msg)?;

                if cmd.region_info.index as usize >= self.regions.len() {
                    return Err(Error::InvalidInput);
                }

                let server_region = &self.regions[cmd.region_info.index as usize];
                let mut region_info = server_region.region_info;
                let sparse_areas = &server_region.sparse_areas;

                let mut cap_data: Vec<u8> = Vec::new();
                if !sparse_areas.is_empty() {
                    // The structures the client reads the list back through,
                    // in the order it reads them.
                    let header = CapabilityHeader {
                        id: VFIO_REGION_INFO_CAP_SPARSE_MMAP as u16,
                        version: 1,
                        next: 0,
                    };
                    cap_data.extend_from_slice(header.as_slice());

                    let sparse = SparseMmapHeader {
                        nr_areas: sparse_areas.len() as u32,
                        reserved: 0,
                    };
                    cap_data.extend_from_slice(sparse.as_slice());

                    for sparse_area in sparse_areas {
                        cap_data.extend_from_slice(sparse_area.area.offset.as_slice());
                        cap_data.extend_from_slice(sparse_area.area.size.as_slice());
                    }
                }

                let send_cap_data = if !cap_data.is_empty() {
                    let full_argsz = (size_of::<vfio_region_info>() + cap_data.len()) as u32;
                    region_info.flags |= VFIO_REGION_INFO_FLAG_CAPS;
                    region_info.argsz = full_argsz;
                    region_info.cap_offset = size_of::<vfio_region_info>() as u32;
                    cmd.region_info.argsz >= full_argsz
                } else {
                    false
                };

                let message_size = if send_cap_data {
                    (size_of::<DeviceGetRegionInfo>() + cap_data.len()) as u32
                } else {
                    size_of::<DeviceGetRegionInfo>() as u32
                };

                let reply = DeviceGetRegionInfo {
                    header: Header {
                        message_id: cmd.header.message_id,
                        command: Command::DeviceGetRegionInfo as u16,
                        flags: HeaderFlags::Reply as u32,
                        message_size,
                        ..Default::default()
                    },
                    region_info,
                };

                if send_cap_data {
                    let reply_bytes = reply.as_slice();
                    let mut buf = Vec::with_capacity(reply_bytes.len() + cap_data.len());
                    buf.extend_from_slice(reply_bytes);
                    buf.extend_from_slice(&cap_data);

                    if let Some(fd) = server_region.mmap_fd {
                        stream
                            .send_with_fds(&[&buf[..]], &[fd])
                            .map_err(Error::SendWithFd)?;
                    } else {
                        stream.write_all(&buf).map_err(Error::StreamWrite)?;
                    }
                } else {
                    stream
                        .write_all(reply.as_slice())
                        .map_err(Error::StreamWrite)?;
                }
            }
            Command::GetIrqInfo => {
                if header.no_reply() {
                    return Err(Error::UnexpectedNoReply(Command::GetIrqInfo));
                }

                let mut cmd = GetIrqInfo {
                    header,
                    ..Default::default()
                };
                fill(&mut cmd, msg)?;

                if cmd.index as usize >= self.irqs.len() {
                    return Err(Error::InvalidInput);
                }

                let irq = &self.irqs[cmd.index as usize];

                let reply = GetIrqInfo {
                    header: Header {
                        message_id: cmd.header.message_id,
                        command: Command::GetIrqInfo as u16,
                        flags: HeaderFlags::Reply as u32,
                        message_size: size_of::<GetIrqInfo>() as u32,
                        ..Default::default()
                    },
                    argsz: (size_of::<GetIrqInfo>() - size_of::<Header>()) as u32,
                    index: irq.index,
                    flags: irq.flags,
                    count: irq.count,
                };
                stream
                    .write_all(reply.as_slice())
                    .map_err(Error::StreamWrite)?;
            }
            Command::SetIrqs => {
                let mut cmd = SetIrqs {
                    header,
                    ..Default::default()
                };
                fill(&mut cmd, msg)?;

                if cmd.index as usize >= self.irqs.len() {
                    return Err(Error::InvalidInput);
                }

                if cmd.flags & VFIO_IRQ_SET_DATA_BOOL > 0 {
                    return Err(Error::UnsupportedFeature);
                }

                backend
                    .set_irqs(cmd.index, cmd.flags, cmd.start, cmd.count, fds)
                    .map_err(Error::Backend)?;

                if header.no_reply() {
                    return Ok(());
                }

                let reply = Header {
                    message_id: cmd.header.message_id,
                    command: Command::SetIrqs as u16,
                    flags: HeaderFlags::Reply as u32,
                    message_size: size_of::<Header>() as u32,
                    ..Default::default()
                };
                stream
                    .write_all(reply.as_slice())
                    .map_err(Error::StreamWrite)?;
            }
            Command::RegionRead => {
                if header.no_reply() {
                    return Err(Error::UnexpectedNoReply(Command::RegionRead));
                }

                let mut cmd = RegionAccess {
                    header,
                    ..Default::default()
                };
                fill(&mut cmd, msg)?;

                let (region, offset, count) = (cmd.region, cmd.offset, cmd.count);

                if region as usize >= self.regions.len() {
                    return Err(Error::InvalidInput);
                }
                if count > default_max_data_xfer_size() {
                    return Err(Error::TooLarge(count));
                }

                let reply = RegionAccess {
                    header: Header {
                        message_id: cmd.header.message_id,
                        command: Command::RegionRead as u16,
                        flags: HeaderFlags::Reply as u32,
                        message_size: size_of::<RegionAccess>() as u32 + count,
                        ..Default::default()
                    },
                    region,
                    offset,
                    count,
                };
                // The reply and its data go out in one write; the data is read by the
                // backend straight into the reply buffer (no allocation per message).
                let start = stream.buf.len();
                stream.buf.extend_from_slice(reply.as_slice());
                let data_at = stream.buf.len();
                stream.buf.resize(data_at + count as usize, 0);
                if let Err(e) = backend.region_read(region, offset, &mut stream.buf[data_at..]) {
                    stream.buf.truncate(start);
                    return Err(Error::Backend(e));
                }
            }
            Command::RegionWrite => {
                let mut cmd = RegionAccess {
                    header,
                    ..Default::default()
                };
                fill(&mut cmd, msg)?;

                let (region, offset, count) = (cmd.region, cmd.offset, cmd.count);

                if region as usize >= self.regions.len() {
                    return Err(Error::InvalidInput);
                }

                let data = &msg[size_of::<RegionAccess>()..];
                if data.len() != count as usize {
                    return Err(Error::InvalidInput);
                }
                backend
                    .region_write(region, offset, data)
                    .map_err(Error::Backend)?;

                if header.no_reply() {
                    return Ok(());
                }

                let reply = RegionAccess {
                    header: Header {
                        message_id: cmd.header.message_id,
                        command: Command::RegionWrite as u16,
                        flags: HeaderFlags::Reply as u32,
                        message_size: size_of::<RegionAccess>() as u32,
                        ..Default::default()
                    },
                    region,
                    offset,
                    count,
                };
                stream
                    .write_all(reply.as_slice())
                    .map_err(Error::StreamWrite)?;
            }
            Command::DeviceReset => {
                backend.reset().map_err(Error::Backend)?;

                if header.no_reply() {
                    return Ok(());
                }

                let reply = Header {
                    message_id: header.message_id,
                    command: Command::DeviceReset as u16,
                    flags: HeaderFlags::Reply as u32,
                    message_size: size_of::<Header>() as u32,
                    ..Default::default()
                };
                stream
                    .write_all(reply.as_slice())
                    .map_err(Error::StreamWrite)?;
            }
        }

        Ok(())
    }

    /// Serves one client: connections that end before a successful VERSION (a peer that
    /// connects and leaves, a liveness probe, garbage) are dropped and the next one is
    /// accepted; after VERSION the server returns when its client closes the connection, or
    /// with the error that made it drop the connection.
    pub fn run(&self, backend: &mut dyn ServerBackend) -> Result<(), Error> {
        loop {
            let (mut stream, _) = self.listener.accept().map_err(Error::SocketAccept)?;
            let mut negotiated = false;
            match self.serve_connection(backend, &mut stream, &mut negotiated) {
                Ok(()) if negotiated => return Ok(()),
                Err(e) if negotiated => return Err(e),
                Ok(()) => info!("A peer closed its connection before VERSION; accepting again"),
                Err(e) => warn!("Dropped a connection before VERSION: {e}; accepting again"),
            }
        }
    }

    /// Serves one already-connected stream until it closes (or the error that dropped it),
    /// without accepting on the listener: for callers that accept connections themselves,
    /// and for fuzzing the message parser over a socket pair.
    pub fn run_stream(
        &self,
        backend: &mut dyn ServerBackend,
        mut stream: UnixStream,
    ) -> Result<(), Error> {
        let mut negotiated = false;
        self.serve_connection(backend, &mut stream, &mut negotiated)
    }

    fn serve_connection(
        &self,
        backend: &mut dyn ServerBackend,
        stream: &mut UnixStream,
        negotiated: &mut bool,
    ) -> Result<(), Error> {
        let mut inbox = Inbox::new();
        let mut out_buf = Vec::with_capacity(RECV_CHUNK);
        loop {
            let mut out = Replies {
                stream,
                buf: &mut out_buf,
            };
            let (header, range, fds) = match inbox.next(&mut out) {
                Ok(Some(m)) => m,
                Ok(None) => {
                    info!("Connection closed");
                    return Ok(());
                }
                Err(e) => {
                    // The replies to the messages before the bad one still go out.
                    let _ = out.flush();
                    return Err(e);
                }
            };
            let msg = &inbox.buf[range];
            let is_version = header.command == Command::Version as u16;
            let r = if header.flags & (HeaderFlags::Reply as u32 | HeaderFlags::Error as u32) != 0
            {
                // A client sends commands, not replies.
                Err(Error::InvalidInput)
            } else if *negotiated && is_version {
                Err(Error::BadVersion("VERSION was already negotiated"))
            } else if !*negotiated && !is_version {
                Err(Error::BadVersion("the first message must be VERSION"))
            } else {
                self.handle_command(backend, &mut out, header, msg, fds)
            };
            match r {
                Ok(()) => *negotiated |= is_version,
                Err(e @ (Error::StreamWrite(_) | Error::SendWithFd(_))) => return Err(e),
                Err(e) => {
                    error!("Error handling command: {:?}: {e}", header.command);
                    let reply = Header {
                        message_id: header.message_id,
                        command: header.command,
                        flags: HeaderFlags::Error as u32 | HeaderFlags::Reply as u32,
                        message_size: size_of::<Header>() as u32,
                        error: e.errno() as u32,
                    };
                    out.write_all(reply.as_slice())
                        .map_err(Error::StreamWrite)?;
                }
            }
        }
    }
}

/// How much the server asks the socket for at a time: many posted writes (48 bytes each)
/// arrive in one `recvmsg`.
const RECV_CHUNK: usize = 64 << 10;

/// At most this many receives' file descriptors wait for their message (see
/// [`Inbox::next`]); a well-behaved client needs two.
const MAX_PENDING_FD_SETS: usize = 4;

/// The replies to the messages of one receive, gathered and sent with one write before the
/// server next waits for input (a reply used to be two writes, which could wake the client's
/// reader twice). The client only waits for a reply after sending the message that asks for
/// it, so nothing it waits for is held back.
struct Replies<'a> {
    stream: &'a mut UnixStream,
    buf: &'a mut Vec<u8>,
}

impl Replies<'_> {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// A reply that carries file descriptors: whatever is gathered goes first, in order.
    fn send_with_fds(&mut self, bufs: &[&[u8]], fds: &[RawFd]) -> vmm_sys_util::errno::Result<usize> {
        self.flush().map_err(|e| vmm_sys_util::errno::Error::new(e.raw_os_error().unwrap_or(EINVAL)))?;
        self.stream.send_with_fds(bufs, fds)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.stream.write_all(self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

/// The bytes received and not yet handled, read from the socket in large chunks so that one
/// `recvmsg` can carry many messages.
///
/// File descriptors: the kernel ends a `recvmsg` on a UNIX stream socket right after the data
/// of a send that carried descriptors (net/unix/af_unix.c, `unix_stream_read_generic`), and
/// QEMU sends a message that carries descriptors with one `sendmsg` starting at the message's
/// header. So the descriptors of one receive belong to the last message that starts within the
/// bytes of that receive. Descriptors that arrive with bytes in which no message starts belong
/// to no message and are closed.
struct Inbox {
    buf: Vec<u8>,
    /// `buf[head..tail]` is unhandled.
    head: usize,
    tail: usize,
    /// The stream offset of `buf[0]`.
    base: u64,
    /// Descriptors waiting for their message: (stream offset of the receive's first byte,
    /// of its end, the descriptors).
    fds: std::collections::VecDeque<(u64, u64, Vec<File>)>,
}

impl Inbox {
    fn new() -> Inbox {
        Inbox {
            buf: vec![0; RECV_CHUNK],
            head: 0,
            tail: 0,
            base: 0,
            fds: std::collections::VecDeque::new(),
        }
    }

    /// The next whole message: its header, where its bytes are in `self.buf`, and its file
    /// descriptors. Sizes outside `size_of::<Header>()..=MAX_MESSAGE_SIZE` are refused before
    /// anything is allocated for them (the stream cannot be resynchronised after one: the
    /// caller drops the connection). Gathered replies are sent before the socket is waited on.
    /// `Ok(None)` at a clean close between messages.
    fn next(
        &mut self,
        out: &mut Replies<'_>,
    ) -> Result<Option<(Header, std::ops::Range<usize>, Vec<File>)>, Error> {
        loop {
            let avail = self.tail - self.head;
            let mut need = size_of::<Header>();
            if avail >= size_of::<Header>() {
                let mut header = Header::default();
                header
                    .as_mut_slice()
                    .copy_from_slice(&self.buf[self.head..self.head + size_of::<Header>()]);
                let size = header.message_size;
                if (size as usize) < size_of::<Header>() || size > MAX_MESSAGE_SIZE {
                    return Err(Error::MessageSize(size));
                }
                need = size as usize;
                if avail >= need {
                    let start = self.base + self.head as u64;
                    let end = start + need as u64;
                    let range = self.head..self.head + need;
                    self.head += need;
                    return Ok(Some((header, range, self.take_fds(start, end))));
                }
            }
            out.flush().map_err(Error::StreamWrite)?;
            self.make_room(need);
            if !self.receive(out.stream, avail)? {
                return Ok(None);
            }
        }
    }

    /// The descriptors of the message at stream offsets `start..end`, if it is the last one
    /// that starts in their receive; those whose receive lies wholly before it are closed.
    fn take_fds(&mut self, start: u64, end: u64) -> Vec<File> {
        while let Some(&(_, chunk_end, _)) = self.fds.front() {
            if chunk_end > start {
                break;
            }
            warn!("Closing file descriptors that came with no message");
            self.fds.pop_front();
        }
        let mine = match self.fds.front() {
            Some(&(chunk_start, chunk_end, _)) if chunk_start <= start && end >= chunk_end => {
                self.fds.pop_front().map(|(_, _, f)| f).unwrap_or_default()
            }
            _ => Vec::new(),
        };
        // Receives that end within this message hold no later message's start.
        while let Some(&(_, chunk_end, _)) = self.fds.front() {
            if chunk_end > end {
                break;
            }
            warn!("Closing file descriptors that came with no message");
            self.fds.pop_front();
        }
        mine
    }

    /// Room for a message of `need` bytes from `head`, and for a full chunk after `tail`.
    fn make_room(&mut self, need: usize) {
        if self.head > 0 {
            self.buf.copy_within(self.head..self.tail, 0);
            self.base += self.head as u64;
            self.tail -= self.head;
            self.head = 0;
        }
        // `need` is at most MAX_MESSAGE_SIZE (checked by the caller), so the buffer stays
        // below MAX_MESSAGE_SIZE + RECV_CHUNK.
        let want = need.max(self.tail + RECV_CHUNK);
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
    }

    /// One `recvmsg` into the free part of the buffer. `avail` bytes were already waiting.
    /// `Ok(false)` when the peer closed the connection between messages.
    fn receive(&mut self, stream: &mut UnixStream, avail: usize) -> Result<bool, Error> {
        // The maximum number of FDs that can be sent is 16 so that is
        // also the maximum that can be received.
        let mut raw = [0 as RawFd; 16];
        let mut iovecs = [iovec {
            iov_base: self.buf[self.tail..].as_mut_ptr() as *mut c_void,
            iov_len: self.buf.len() - self.tail,
        }];
        // SAFETY: the iovec points into `self.buf`, which outlives the call, and `raw` has
        // room for 16 descriptors.
        let (bytes, nfds) = unsafe {
            stream
                .recv_with_fds(&mut iovecs, &mut raw)
                .map_err(Error::ReceiveWithFd)?
        };
        let fds: Vec<File> = raw[..nfds]
            .iter()
            // SAFETY: the kernel just gave us these descriptors; each is owned once.
            .map(|fd| unsafe { File::from_raw_fd(*fd) })
            .collect();
        if bytes == 0 {
            return if avail == 0 {
                Ok(false)
            } else {
                Err(Error::StreamRead(std::io::ErrorKind::UnexpectedEof.into()))
            };
        }
        let chunk_start = self.base + self.tail as u64;
        let chunk_end = chunk_start + bytes as u64;
        self.tail += bytes;
        if !fds.is_empty() {
            if self.fds.len() >= MAX_PENDING_FD_SETS {
                warn!("Closing file descriptors that came with no message");
                self.fds.pop_front();
            }
            self.fds.push_back((chunk_start, chunk_end, fds));
        }
        Ok(true)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            if path.exists() {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    mod framing {
        use super::*;
        use std::os::fd::AsRawFd;

        fn header_bytes(command: u16, size: u32) -> Vec<u8> {
            let h = Header {
                message_id: 1,
                command,
                message_size: size,
                flags: 0,
                error: 0,
            };
            h.as_slice().to_vec()
        }

        /// The next message as the server sees it (header, bytes, descriptors).
        fn read_message(
            stream: &mut UnixStream,
            inbox: &mut Inbox,
        ) -> Result<Option<(Header, Vec<u8>, Vec<File>)>, Error> {
            let mut buf = Vec::new();
            let mut out = Replies { stream, buf: &mut buf };
            Ok(inbox
                .next(&mut out)?
                .map(|(h, r, fds)| (h, inbox.buf[r].to_vec(), fds)))
        }

        fn memfd() -> File {
            // SAFETY: a valid NUL-terminated name; the descriptor is owned by the File.
            unsafe { File::from_raw_fd(libc::memfd_create(c"t".as_ptr(), 0)) }
        }

        #[test]
        fn many_messages_in_one_receive_are_handed_out_one_by_one() {
            let (mut a, mut b) = UnixStream::pair().unwrap();
            let mut all = Vec::new();
            for i in 0..100u32 {
                let mut m = header_bytes(Command::RegionWrite as u16, 36);
                m.extend_from_slice(&i.to_le_bytes());
                m.extend_from_slice(&[0; 16]);
                all.extend_from_slice(&m);
            }
            a.write_all(&all).unwrap();
            drop(a);
            let mut inbox = Inbox::new();
            for i in 0..100u32 {
                let (h, msg, fds) = read_message(&mut b, &mut inbox).unwrap().unwrap();
                assert_eq!(h.message_size, 36);
                assert_eq!(&msg[16..20], &i.to_le_bytes(), "message {i} in order");
                assert!(fds.is_empty());
            }
            assert!(read_message(&mut b, &mut inbox).unwrap().is_none(), "clean close");
        }

        #[test]
        fn descriptors_go_to_the_message_they_were_sent_with() {
            let (a, mut b) = UnixStream::pair().unwrap();
            let plain = header_bytes(Command::DeviceReset as u16, 16);
            let with_fd = {
                let mut m = header_bytes(Command::DmaMap as u16, 16 + 32);
                m.extend_from_slice(&[0; 32]);
                m
            };
            let f = memfd();
            // plain, fd-carrying, plain, and a fd-carrying message split in two sends.
            (&a).write_all(&plain).unwrap();
            a.send_with_fds(&[&with_fd[..]], &[f.as_raw_fd()]).unwrap();
            (&a).write_all(&plain).unwrap();
            a.send_with_fds(&[&with_fd[..20]], &[f.as_raw_fd(), f.as_raw_fd()])
                .unwrap();
            (&a).write_all(&with_fd[20..]).unwrap();
            (&a).write_all(&plain).unwrap();
            drop(a);
            let mut inbox = Inbox::new();
            let got: Vec<(u16, usize)> = std::iter::from_fn(|| {
                read_message(&mut b, &mut inbox)
                    .unwrap()
                    .map(|(h, _, fds)| (h.command, fds.len()))
            })
            .collect();
            let (r, m) = (Command::DeviceReset as u16, Command::DmaMap as u16);
            assert_eq!(got, vec![(r, 0), (m, 1), (r, 0), (m, 2), (r, 0)]);
        }

        #[test]
        fn descriptors_with_no_message_of_their_own_are_closed() {
            let (a, mut b) = UnixStream::pair().unwrap();
            let mut m = header_bytes(Command::DmaMap as u16, 16 + 32);
            m.extend_from_slice(&[0; 32]);
            let mut inbox = Inbox::new();
            (&a).write_all(&m[..20]).unwrap();
            assert!(inbox.receive(&mut b, 0).unwrap(), "the first 20 bytes");
            // The rest of the body, with a descriptor: no message starts in these bytes.
            let f = memfd();
            a.send_with_fds(&[&m[20..]], &[f.as_raw_fd()]).unwrap();
            drop(a);
            let (h, _, fds) = read_message(&mut b, &mut inbox).unwrap().unwrap();
            assert_eq!(h.command, Command::DmaMap as u16);
            assert!(fds.is_empty(), "the descriptor came after the message started");
            assert!(inbox.fds.is_empty(), "and it was closed, not kept");
            assert!(read_message(&mut b, &mut inbox).unwrap().is_none());
        }

        #[test]
        fn a_split_header_and_its_body_are_read_whole() {
            let (mut a, mut b) = UnixStream::pair().unwrap();
            let mut m = header_bytes(Command::Version as u16, 20 + 3);
            m.extend_from_slice(&[0, 0, 0, 0, b'{', b'}', 0]);
            a.write_all(&m[..5]).unwrap();
            let rest = m[5..].to_vec();
            let t = std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                a.write_all(&rest).unwrap();
                a
            });
            let mut inbox = Inbox::new();
            let (h, msg, fds) = read_message(&mut b, &mut inbox).unwrap().unwrap();
            assert_eq!(h.command, Command::Version as u16);
            assert_eq!(msg, m);
            assert!(fds.is_empty());
            drop(t.join().unwrap());
            assert!(read_message(&mut b, &mut inbox).unwrap().is_none(), "clean close");
        }

        #[test]
        fn sizes_outside_the_bound_are_refused_before_allocation() {
            for size in [0, 15, MAX_MESSAGE_SIZE + 1, u32::MAX] {
                let (mut a, mut b) = UnixStream::pair().unwrap();
                a.write_all(&header_bytes(Command::RegionWrite as u16, size))
                    .unwrap();
                assert!(
                    matches!(read_message(&mut b, &mut Inbox::new()), Err(Error::MessageSize(s)) if s == size),
                    "{size}"
                );
            }
        }

        #[test]
        fn a_body_shorter_than_its_size_is_a_read_error() {
            let (mut a, mut b) = UnixStream::pair().unwrap();
            a.write_all(&header_bytes(Command::RegionRead as u16, 32))
                .unwrap();
            drop(a);
            assert!(matches!(
                read_message(&mut b, &mut Inbox::new()),
                Err(Error::StreamRead(_))
            ));
        }

        #[test]
        fn a_message_shorter_than_its_command_is_refused() {
            let mut cmd = RegionAccess::default();
            let msg = header_bytes(Command::RegionRead as u16, 20);
            assert!(matches!(fill(&mut cmd, &msg), Err(Error::ShortMessage)));
            let mut msg = header_bytes(Command::RegionRead as u16, 32);
            msg.extend_from_slice(&[7; 16]);
            fill(&mut cmd, &msg).unwrap();
            assert_eq!(cmd.count, 0x0707_0707);
        }
    }

    mod capability {
        use super::*;

        /// Offsets in a capability list are relative to the region info
        /// structure.
        const FIRST_CAPABILITY: u32 = size_of::<vfio_region_info>() as u32;

        fn sparse_cap(next: u32, nr_areas: u32, areas: &[(u64, u64)]) -> Vec<u8> {
            let header = CapabilityHeader {
                id: VFIO_REGION_INFO_CAP_SPARSE_MMAP as u16,
                version: 1,
                next,
            };
            let sparse = SparseMmapHeader {
                nr_areas,
                reserved: 0,
            };

            let mut data = Vec::new();
            data.extend_from_slice(header.as_slice());
            data.extend_from_slice(sparse.as_slice());
            for (offset, size) in areas {
                data.extend_from_slice(offset.as_slice());
                data.extend_from_slice(size.as_slice());
            }
            data
        }

        fn area(offset: u64, size: u64) -> vfio_region_sparse_mmap_area {
            vfio_region_sparse_mmap_area { offset, size }
        }

        fn walk(
            cap_offset: u32,
            cap_data: &[u8],
        ) -> Result<Vec<vfio_region_sparse_mmap_area>, CapabilityError> {
            let region_info = vfio_region_info {
                argsz: (size_of::<vfio_region_info>() + cap_data.len()) as u32,
                flags: VFIO_REGION_INFO_FLAG_CAPS,
                cap_offset,
                ..Default::default()
            };
            Client::parse_region_caps(cap_data, &region_info)
        }

        #[test]
        fn absent_list_collects_none() {
            assert_eq!(walk(0, &[]).ok(), Some(vec![]));
        }

        #[test]
        fn unsupported_id_is_skipped() {
            let mut cap_data = sparse_cap(0, 1, &[(0x0, 0x1000)]);
            cap_data[0..2].copy_from_slice(&0xffffu16.to_ne_bytes());

            assert_eq!(walk(FIRST_CAPABILITY, &cap_data).ok(), Some(vec![]));
        }

        #[test]
        fn offset_inside_region_info_fails() {
            let cap_data = sparse_cap(0, 1, &[(0x0, 0x1000)]);

            assert!(matches!(
                walk(FIRST_CAPABILITY - 4, &cap_data),
                Err(CapabilityError::Outside { .. })
            ));
        }

        #[test]
        fn offset_past_list_fails() {
            let cap_data = sparse_cap(0, 1, &[(0x0, 0x1000)]);
            let past = FIRST_CAPABILITY + cap_data.len() as u32;

            assert!(matches!(
                walk(past, &cap_data),
                Err(CapabilityError::Truncated { .. })
            ));
        }

        #[test]
        fn next_pointing_at_itself_fails() {
            let cap_data = sparse_cap(FIRST_CAPABILITY, 1, &[(0x0, 0x1000)]);

            assert!(matches!(
                walk(FIRST_CAPABILITY, &cap_data),
                Err(CapabilityError::NotAdvancing(_))
            ));
        }

        mod sparse {
            use super::*;

            #[test]
            fn areas_keep_wire_order() {
                let cap_data = sparse_cap(0, 2, &[(0x0, 0x1000), (0x2000, 0x3000)]);

                assert_eq!(
                    walk(FIRST_CAPABILITY, &cap_data).ok(),
                    Some(vec![area(0x0, 0x1000), area(0x2000, 0x3000)])
                );
            }

            #[test]
            fn count_of_zero_collects_none() {
                let cap_data = sparse_cap(0, 0, &[]);

                assert_eq!(walk(FIRST_CAPABILITY, &cap_data).ok(), Some(vec![]));
            }

            #[test]
            fn count_beyond_list_fails() {
                let cap_data = sparse_cap(0, u32::MAX, &[(0x0, 0x1000)]);

                assert!(matches!(
                    walk(FIRST_CAPABILITY, &cap_data),
                    Err(CapabilityError::AreaCount { .. })
                ));
            }

            #[test]
            fn truncated_areas_fail() {
                let cap_data = sparse_cap(0, 2, &[(0x0, 0x1000)]);

                assert!(matches!(
                    walk(FIRST_CAPABILITY, &cap_data),
                    Err(CapabilityError::AreaCount { .. })
                ));
            }
        }
    }
}
