/* gp100emu suite "explore-race": the explorer with CPU-side operations on a second vCPU while
 * GPU batches are in flight and nouveau's fault worker runs (issue 17 part 4). Parameters as
 * for explore (gp100emu.explore.*); race mode is on by default.
 *
 * gp100emu-needs: gr-firmware pgd-module
 * gp100emu-append: oops=panic
 * gp100emu-qemu-args: -smp 2 */
#define EXPLORE_RACE_DEFAULT 1
#include "explore.c"
