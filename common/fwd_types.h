/*
 * fwd_types.h - where the fixed-width integer types of code shared by user
 * space and the BPF programs come from.
 *
 * User space gets them from <stdint.h>. A BPF object (clang -target bpf) has
 * no C library: glibc's <stdint.h> would select its 32-bit stubs
 * (gnu/stubs-32.h), which exist only where libc6-dev-i386 happens to be
 * installed. So under __bpf__ they come from the kernel's UAPI
 * <linux/types.h>, as libbpf's and xdp-tools' programs take them, and the
 * C99 names are defined on top so that one parser source serves the DPDK
 * workers, the XDP program and the unit tests alike.
 *
 * Headers that only the XDP program and its loader share
 * (fwd_filter_kern_user.h) use the UAPI names (__u32) directly.
 */
#ifndef FWD_TYPES_H
#define FWD_TYPES_H

#ifdef __bpf__
#include <linux/types.h>
typedef __s8 int8_t;
typedef __u8 uint8_t;
typedef __s16 int16_t;
typedef __u16 uint16_t;
typedef __s32 int32_t;
typedef __u32 uint32_t;
typedef __s64 int64_t;
typedef __u64 uint64_t;
#else
#include <stdint.h>
#endif

#endif /* FWD_TYPES_H */
