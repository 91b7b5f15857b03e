/*
 * cpu-variants.h - includes the file NBI_VARIANTS_OF once per CPU variant
 * (internal.h, "CPU features"; a path from this folder), with ATTR as nothing, NBI_AVX2 or
 * NBI_AVX512 and K(f) as f##_TS_base, f##_TS_avx2 or f##_TS_avx512, the
 * names NBI_CPU_PICK chooses from, and NBI_VBYTES as the variant's vector
 * width in bytes (16, 32 or 64).  The includer sets T and TS (f32 or
 * f64); ATTR, K and NBI_VBYTES are undefined again after.
 */
#define NBI_VNAME_(f, ts, v) f##_##ts##_##v
#define NBI_VNAME(f, ts, v) NBI_VNAME_(f, ts, v)

#define ATTR
#define K(f) NBI_VNAME(f, TS, base)
#define NBI_VBYTES 16
#include NBI_VARIANTS_OF
#undef ATTR
#undef K
#undef NBI_VBYTES
#define ATTR NBI_AVX2
#define K(f) NBI_VNAME(f, TS, avx2)
#define NBI_VBYTES 32
#include NBI_VARIANTS_OF
#undef ATTR
#undef K
#undef NBI_VBYTES
#define ATTR NBI_AVX512
#define K(f) NBI_VNAME(f, TS, avx512)
#define NBI_VBYTES 64
#include NBI_VARIANTS_OF
#undef ATTR
#undef K
#undef NBI_VBYTES
