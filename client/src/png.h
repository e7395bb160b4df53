// A minimal PNG encoder: 8-bit RGB, no interlace, one zlib-compressed IDAT.
#ifndef LORAD_CLIENT_PNG_H_
#define LORAD_CLIENT_PNG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace lorad::client {

// `rgb` holds width*height pixels, row-major, 3 bytes each. The PNG file's
// bytes, or InvalidArgument when the sizes disagree or are zero.
absl::StatusOr<std::string> EncodePng(int width, int height,
                                      const std::vector<uint8_t>& rgb);

}  // namespace lorad::client

#endif  // LORAD_CLIENT_PNG_H_
