// unet/distance_transform.h — exact Euclidean distance transforms (Felzenszwalb & Huttenlocher,
// "Distance Transforms of Sampled Functions", 2012): two passes of the 1-D lower envelope of
// parabolas, linear time in the pixel count. Used by the weight map (distances to cells).
#pragma once

#include <cstdint>
#include <vector>

namespace unet {

// Squared Euclidean distance from every pixel to the nearest pixel with source != 0 (0 on the
// sources). Where there is no source at all the result is +infinity. Computed in double and
// returned as float (exact for squared distances below 2^24).
std::vector<float> squared_distance_transform(const std::vector<uint8_t>& source, int width,
                                              int height);
// sqrt of the above.
std::vector<float> distance_transform(const std::vector<uint8_t>& source, int width, int height);

// The 1-D transform of a sampled function f (FH's algorithm 1): d[q] = min_p (q - p)^2 + f[p].
// f may hold +infinity. Scratch vectors v (int, n) and z (double, n + 1) avoid allocations.
void squared_distance_1d(const double* f, double* d, int n, std::vector<int>& v,
                         std::vector<double>& z);

}  // namespace unet
