// tests/consumer/main.cpp — links the installed libunetcore and does a little real work.
#include <cstdio>

#include "core/autograd.h"
#include "core/communicator.h"
#include "kernels/elementwise.h"
#include "kernels/matmul.h"
#include "kernels/reduce.h"

int main() {
  using namespace unet;
  Tensor a = Tensor::from_vector({1.f, 2.f, 3.f, 4.f}, Shape{2, 2}).set_requires_grad(true);
  Tensor b = Tensor::from_vector({5.f, 6.f, 7.f, 8.f}, Shape{2, 2});
  Tensor loss = sum(relu(matmul(a, b)));  // [[19,22],[43,50]] -> 134
  loss.backward();
  const auto g = a.grad().to_vector();  // row sums of b: [11, 15, 11, 15]
  // The scale-out layer links too (with MPI when the library was built with it); not started by
  // a launcher, this is a single process.
  const int ranks = world().size();
  const bool ok = loss.item() == 134.f && g == std::vector<float>{11.f, 15.f, 11.f, 15.f} && ranks == 1;
  std::printf("consumer: loss %.1f, grad [%g %g %g %g], %d rank -> %s\n", loss.item(), g[0], g[1], g[2], g[3],
              ranks, ok ? "OK" : "WRONG");
  return ok ? 0 : 1;
}
