// tests/test_autograd.cpp — the tape: shared inputs sum their gradients, leaves accumulate across
// passes until zero_grad, no-grad scopes record nothing, a freed graph refuses a second pass.
#include "core/autograd.h"
#include "core/error.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#include "test_util.h"

using namespace unet;

TEST_CASE("Leaf gradients accumulate until zero_grad", "[autograd]") {
  Tensor x = Tensor::from_vector({1.f, -2.f, 3.f}, Shape{3}).set_requires_grad(true);
  CHECK(x.is_leaf());
  CHECK_FALSE(x.grad().defined());
  sum(mul(x, x)).backward();  // d/dx sum(x²) = 2x
  CHECK(x.grad().to_vector() == std::vector<float>{2.f, -4.f, 6.f});
  sum(mul(x, x)).backward();
  CHECK(x.grad().to_vector() == std::vector<float>{4.f, -8.f, 12.f});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("A leaf's gradient shares its memory with no other tensor", "[autograd]") {
  // The backward pass takes a node's fresh gradient as a leaf's grad without copying it only when
  // nothing else holds it: add's backward hands the same gradient to both inputs, and the caller's
  // explicit gradient of a leaf stays the caller's.
  Tensor a = Tensor::from_vector({1.f, 2.f}, Shape{2}).set_requires_grad(true);
  Tensor b = Tensor::from_vector({3.f, 4.f}, Shape{2}).set_requires_grad(true);
  sum(add(a, b)).backward();
  REQUIRE(a.grad().defined());
  REQUIRE(b.grad().defined());
  CHECK(a.grad().data<float>() != b.grad().data<float>());
  a.grad().data<float>()[0] = 7.f;  // in place, as the gradient reducer writes
  CHECK(b.grad().to_vector() == std::vector<float>{1.f, 1.f});
  sum(mul(a, a)).backward();  // a.grad += 2a on the changed value
  CHECK(a.grad().to_vector() == std::vector<float>{9.f, 5.f});

  Tensor c = Tensor::from_vector({5.f, 6.f}, Shape{2}).set_requires_grad(true);
  const Tensor given = Tensor::from_vector({0.5f, 0.25f}, Shape{2});
  c.backward(given);
  CHECK(c.grad().data<float>() != given.data<float>());
  c.grad().data<float>()[1] = 9.f;
  CHECK(given.to_vector() == std::vector<float>{0.5f, 0.25f});
}

TEST_CASE("A tensor used by several ops receives the sum of their gradients", "[autograd]") {
  Tensor x = Tensor::from_vector({0.5f, 2.f}, Shape{2}).set_requires_grad(true);
  Tensor h = scale(x, 3.f);             // h used three times below
  Tensor y = add(add(h, mul(h, h)), h);  // y = 2h + h²;  dy/dx = 3(2 + 2h) = 6 + 18x
  sum(y).backward();
  CHECK(x.grad().to_vector() == std::vector<float>{6.f + 9.f, 6.f + 36.f});
}

TEST_CASE("No-grad scope records nothing, inputs without requires_grad get no gradient", "[autograd]") {
  Tensor x = Tensor::from_vector({1.f, 2.f}, Shape{2}).set_requires_grad(true);
  Tensor c = Tensor::from_vector({3.f, 4.f}, Shape{2});
  {
    NoGradGuard guard;
    CHECK_FALSE(grad_enabled());
    Tensor y = mul(x, c);
    CHECK_FALSE(y.requires_grad());
    CHECK_THROWS_AS(sum(y).backward(), ValueError);
  }
  CHECK(grad_enabled());
  Tensor y = sum(mul(x, c));
  CHECK(y.requires_grad());
  CHECK_FALSE(y.is_leaf());
  y.backward();
  CHECK(x.grad().to_vector() == std::vector<float>{3.f, 4.f});
  CHECK_FALSE(c.grad().defined());
}

TEST_CASE("The graph is freed after backward, backward needs a scalar or an explicit gradient", "[autograd][errors]") {
  Tensor x = Tensor::from_vector({1.f, 2.f}, Shape{2}).set_requires_grad(true);
  Tensor loss = sum(mul(x, x));
  loss.backward();
  CHECK_THROWS_AS(loss.backward(), ValueError);
  CHECK_THROWS_WITH(loss.backward(), Catch::Contains("already freed"));
  Tensor y = mul(x, x);
  CHECK_THROWS_AS(y.backward(), ShapeError);
  CHECK_THROWS_AS(y.backward(Tensor::zeros(Shape{3})), ShapeError);
  CHECK_THROWS_AS(y.set_requires_grad(false), ValueError);
  Tensor d = y.detach();
  CHECK_FALSE(d.requires_grad());
}

// The engine sums gradients in place when it alone holds the sum (the CPU saves an allocation and
// a stream per sum), and into a new tensor whenever anything else can see the memory: the caller's
// output gradient, a gradient handed to two inputs at once (add's backward), a grad() handle.
TEST_CASE("In-place gradient sums never change a tensor someone else holds", "[autograd]") {
  const std::vector<float> go{0.5f, -0.25f, 3.f};
  SECTION("add(h, h): both gradients are the caller's tensor") {
    Tensor x = Tensor::from_vector({1.f, 2.f, 3.f}, Shape{3}).set_requires_grad(true);
    const Tensor h = scale(x, 1.f);
    const Tensor given = Tensor::from_vector(go, Shape{3});
    add(add(h, h), h).backward(given);  // h receives given three times
    CHECK(given.to_vector() == go);
    CHECK(x.grad().to_vector() == std::vector<float>{1.5f, -0.75f, 9.f});
  }
  SECTION("two consumers: the sum of fresh gradients, exact") {
    Tensor x = Tensor::from_vector({1.f, -2.f, 3.f}, Shape{3}).set_requires_grad(true);
    const Tensor h = scale(x, 1.f);
    const Tensor given = Tensor::from_vector(go, Shape{3});
    add(scale(h, 2.f), add(scale(h, 4.f), scale(h, 8.f))).backward(given);  // 14·given, exact in float
    CHECK(given.to_vector() == go);
    CHECK(x.grad().to_vector() == std::vector<float>{7.f, -3.5f, 42.f});
  }
  SECTION("a leaf's grad: in place when nobody holds it, a new tensor when a grad() handle does") {
    Tensor x = Tensor::from_vector({1.f, -2.f, 3.f}, Shape{3}).set_requires_grad(true);
    sum(mul(x, x)).backward();
    const float* first = x.grad().data<float>();
    sum(mul(x, x)).backward();  // nothing else holds x.grad: summed where it is
    CHECK(x.grad().data<float>() == first);
    CHECK(x.grad().to_vector() == std::vector<float>{4.f, -8.f, 12.f});
    const Tensor held = x.grad();
    sum(mul(x, x)).backward();
    CHECK(held.to_vector() == std::vector<float>{4.f, -8.f, 12.f});  // the handle keeps its value
    CHECK(x.grad().to_vector() == std::vector<float>{6.f, -12.f, 18.f});
    CHECK(x.grad().data<float>() != held.data<float>());
  }
  SECTION("a leaf's grad in the caller's memory (borrowed, as a gradient bucket's view) is never written") {
    std::vector<float> mine{1.f, 1.f, 1.f};
    Tensor x = Tensor::from_vector({1.f, -2.f, 3.f}, Shape{3}).set_requires_grad(true);
    x.impl()->grad = Tensor::from_external(mine.data(), Shape{3}, DType::Float32, Device::cpu(), nullptr).impl();
    sum(mul(x, x)).backward();
    CHECK(mine == std::vector<float>{1.f, 1.f, 1.f});
    CHECK(x.grad().to_vector() == std::vector<float>{3.f, -3.f, 7.f});
  }
}
