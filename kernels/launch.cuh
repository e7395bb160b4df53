// How kernels/*.cu launch their kernels. Under nvcc this is the usual
// triple-chevron launch; tests/unit/kernels_emu.h defines
// LORAD_LAUNCH_KERNEL before including a .cu file to run the same code on
// the host. `kernel` must be one token (a name or a local function
// pointer), so template arguments with commas go through a local first.
#ifndef LORAD_KERNELS_LAUNCH_CUH_
#define LORAD_KERNELS_LAUNCH_CUH_

#ifndef LORAD_LAUNCH_KERNEL
#define LORAD_LAUNCH_KERNEL(kernel, grid, block, stream, ...) \
  kernel<<<(grid), (block), 0, (stream)>>>(__VA_ARGS__)
#endif

#endif  // LORAD_KERNELS_LAUNCH_CUH_
