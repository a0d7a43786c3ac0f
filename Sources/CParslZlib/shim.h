#include <zlib.h>

// deflateInit2/inflateInit2 are function-like macros over *_ (they pass ZLIB_VERSION and
// sizeof(z_stream)); Swift cannot import them.
static inline int cparslzlib_deflateInit2(z_streamp strm, int level, int method, int windowBits,
                                          int memLevel, int strategy) {
    return deflateInit2(strm, level, method, windowBits, memLevel, strategy);
}

static inline int cparslzlib_inflateInit2(z_streamp strm, int windowBits) {
    return inflateInit2(strm, windowBits);
}
