/* Bounded waits for the suites' child processes.
 *
 * The guest kernels are built without CONFIG_POSIX_TIMERS (guest-tests/kernel/gp100emu.config
 * keeps tinyconfig's choice), so alarm(), setitimer() and timer_create() fail with ENOSYS
 * (kernel/sys_ni.c; 6.1's stub also logs "attempted a POSIX timer syscall"): an alarm() in a
 * child is no watchdog. nanosleep() and poll() work without them (hrtimers), so the parent
 * keeps the deadline instead: it polls the child, and kills it when the time is up. */
#ifndef GP100EMU_CHILD_H
#define GP100EMU_CHILD_H
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Milliseconds of CLOCK_MONOTONIC. */
static inline long long child_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* waitpid(pid, status, 0) with a deadline: past `secs` seconds the child is killed (SIGKILL)
 * and reaped, and this returns -1 with errno ETIMEDOUT. Otherwise what waitpid returns (errno
 * is 0 unless waitpid failed). */
static inline pid_t child_wait(pid_t pid, int *status, int secs)
{
	long long end = child_now_ms() + (long long)secs * 1000;
	errno = 0;
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r != 0)
			return r;
		if (child_now_ms() >= end) {
			kill(pid, SIGKILL);
			waitpid(pid, status, 0);
			errno = ETIMEDOUT;
			return -1;
		}
		struct timespec ten_ms = { 0, 10 * 1000 * 1000 };
		nanosleep(&ten_ms, NULL);
	}
}

/* read(fd, buf, len) that gives up after `secs` seconds with nothing to read: -1 with errno
 * ETIMEDOUT. */
static inline ssize_t child_read(int fd, void *buf, size_t len, int secs)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r = poll(&p, 1, secs * 1000);
	if (r == 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	return r < 0 ? -1 : read(fd, buf, len);
}
#endif
