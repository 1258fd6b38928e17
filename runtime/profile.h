/* profile.h: `kvfleet profile`, measured per-operator profiles of one GPU.
 *
 * Times the kernels (kern.h) over a sweep of operator shapes of one model
 * at the given tensor-parallel degrees, within a time budget, and writes
 * the measurements as the profile CSVs that `kvfleet calibrate --profiles
 * DIR` reads (formats in docs/calibration.md, the command in
 * docs/gpu.md). With --backend cpu the same sweep runs on the CPU
 * references, for tiny shapes: a plumbing check of the profile -> calibrate
 * path, not a measurement of any GPU. */
#ifndef RT_PROFILE_H
#define RT_PROFILE_H

#ifdef __cplusplus
extern "C" {
#endif

/* `kvfleet profile --backend cuda|cpu --model M --gpu G [--tp N[,N...]]
 * [--budget-s S] [--max-tokens N] [-o DIR] [--json] [--dry-run]`; argv[0] is
 * "profile". Returns the exit code: 0 ok (the budget may have cut the
 * sweep short), 1 bad input or buffers that do not fit the device, 2 usage,
 * 3 no CUDA in the build, no device, a CUDA or cuBLAS failure, or a file
 * that cannot be written. */
int rt_main_profile(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif /* RT_PROFILE_H */
