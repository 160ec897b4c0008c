// core/cuda_graph.cpp — CudaGraph: capture into a private memory pool, replay with a signature check.
#include "core/cuda_graph.h"

#include "core/error.h"

namespace unet {

CudaGraph::CudaGraph(const std::function<void()>& work, std::string signature)
    : pool_(std::make_unique<CudaMemoryPool>()), signature_(std::move(signature)) {
  {
    const CudaMemoryPool::Use use(*pool_);
    cuda_rt::begin_capture();
    try {
      work();
    } catch (...) {
      cuda_rt::abort_capture();
      throw;
    }
    work_ = cuda_rt::end_capture();
  }
}

void CudaGraph::replay(const std::string& signature) const {
  UNET_CHECK(signature == signature_, ValueError, "CudaGraph::replay: the graph was captured for ", signature_,
             " and cannot run ", signature, " (its shapes and addresses are fixed): capture a new graph");
  work_->replay();
}

}  // namespace unet
