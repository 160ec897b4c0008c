// core/parallel.h — parallel_for for the CPU backend: splits [begin, end) into contiguous chunks
// and runs them on a small persistent thread pool. Threads = hardware concurrency unless
// set_num_threads() says otherwise (1 = run inline, useful for debugging and determinism tests).
// Between regions the threads poll for a fraction of a millisecond before they sleep, so keep
// processes × threads at or below the cores (e.g. --threads 1 per MPI rank on a 2-core machine).
//
// Results never depend on the thread count as long as the body writes disjoint outputs per
// index (every CPU op in the library is written that way; reductions combine per-chunk partials
// in a fixed order).
#pragma once

#include <cstdint>
#include <functional>

namespace unet {

// Number of worker threads the CPU backend uses (>= 1).
int num_threads();
// n >= 1 sets the count; n == 0 restores the default (std::thread::hardware_concurrency()).
void set_num_threads(int n);

// Calls body(chunk_begin, chunk_end) over disjoint chunks covering [begin, end). Chunks are at
// least `grain` long. Exceptions thrown by the body are rethrown (the first one) in the caller.
void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& body);

}  // namespace unet
