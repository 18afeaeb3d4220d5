/* The library's own version string, for programs checking at run time that
 * the libtarn.so they loaded is the one they were compiled against. */
#include "tarn/version.h"

const char *tarn_version(void) { return TARN_VERSION; }
