/* The parts of nouveau's DRM uapi the SVM suite uses, written from include/uapi/drm/nouveau_drm.h
 * and drm.h of Linux 6.12 (ioctl numbers and struct layouts are the kernel's ABI). No libdrm. */
#ifndef GP100EMU_NOUVEAU_H
#define GP100EMU_NOUVEAU_H
#include <stdint.h>
#include <sys/ioctl.h>

/* DRM_IOWR('d', DRM_COMMAND_BASE + nr, type), DRM_COMMAND_BASE = 0x40. */
#define NV_IOWR(nr, size) _IOC(_IOC_READ | _IOC_WRITE, 'd', 0x40 + (nr), (size))
#define NV_IOW(nr, size) _IOC(_IOC_WRITE, 'd', 0x40 + (nr), (size))

struct nv_getparam { uint64_t param, value; };
#define NV_IOCTL_GETPARAM NV_IOWR(0x00, sizeof(struct nv_getparam))
#define NV_GETPARAM_CHIPSET_ID 11

struct nv_channel_alloc {
	uint32_t fb_ctxdma_handle;
	uint32_t tt_ctxdma_handle;
	int32_t channel;
	uint32_t pushbuf_domains;
	uint32_t notifier_handle;
	struct { uint32_t handle, grclass; } subchan[8];
	uint32_t nr_subchan;
};
#define NV_IOCTL_CHANNEL_ALLOC NV_IOWR(0x02, sizeof(struct nv_channel_alloc))
struct nv_channel_free { int32_t channel; };
#define NV_IOCTL_CHANNEL_FREE NV_IOW(0x03, sizeof(struct nv_channel_free))
/* tt_ctxdma_handle values selecting a runlist on Kepler+ when fb_ctxdma_handle is ~0. */
#define NV_FIFO_ENGINE_GR 0x01
#define NV_FIFO_ENGINE_CE 0x30

struct nv_svm_init { uint64_t unmanaged_addr, unmanaged_size; };
#define NV_IOCTL_SVM_INIT NV_IOWR(0x08, sizeof(struct nv_svm_init))

struct nv_svm_bind {
	uint64_t header, va_start, va_end, npages, stride, result, reserved0, reserved1;
};
#define NV_IOCTL_SVM_BIND NV_IOWR(0x09, sizeof(struct nv_svm_bind))
/* command MIGRATE (0) in 7:0, target GPU_VRAM (1 << 31) in 47:16. */
#define NV_SVM_BIND_MIGRATE_TO_VRAM ((uint64_t)(1u << 31) << 16)

_Static_assert(sizeof(struct nv_channel_alloc) == 88, "drm_nouveau_channel_alloc is 88 bytes");
_Static_assert(sizeof(struct nv_svm_bind) == 64, "drm_nouveau_svm_bind is 64 bytes");
#endif
