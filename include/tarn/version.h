/* tarn's version: the numbers a program was compiled against, and
 * tarn_version() for the library it runs with. The Makefile reads the three
 * numbers below for the shared libraries' SONAME (libtarn.so.MAJOR) and for
 * tarn.pc, tarn-override.pc and the CMake package: this is the one place to
 * change them. */
#ifndef TARN_VERSION_H
#define TARN_VERSION_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TARN_VERSION_MAJOR 0
#define TARN_VERSION_MINOR 1
#define TARN_VERSION_PATCH 0

#define TARN__STR(x) #x
#define TARN__XSTR(x) TARN__STR(x)
/* "MAJOR.MINOR.PATCH", made from the numbers above, e.g. "0.1.0". */
#define TARN_VERSION                                                                               \
    TARN__XSTR(TARN_VERSION_MAJOR)                                                                 \
    "." TARN__XSTR(TARN_VERSION_MINOR) "." TARN__XSTR(TARN_VERSION_PATCH)

/* The TARN_VERSION of the library linked at run time (never NULL). */
TARN_API const char *tarn_version(void);

#ifdef __cplusplus
}
#endif
#endif
