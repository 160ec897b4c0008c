// tests/test_geometry.cpp — U-Net size arithmetic against the paper's numbers.
#include "core/error.h"
#include "test_util.h"
#include "unet/geometry.h"

using namespace unet;

TEST_CASE("The paper configuration maps 572 to 388 with a 92-pixel context border", "[geometry]") {
  UNetGeometry g;  // depth 4, valid, two convs per level
  CHECK(g.output_size(572) == 388);
  CHECK(g.context_border() == 92);
  CHECK(g.skip_sizes(572) == std::vector<int64_t>{568, 280, 136, 64});
  CHECK(g.is_valid_input(572));
  CHECK_FALSE(g.is_valid_input(570));  // 566 -> 283: the first pool would see an odd size
  CHECK(g.valid_input_at_most(570) == 556);
  CHECK(g.valid_input_at_least(570) == 572);
  CHECK(g.input_for_output(388) == 572);
  // Valid sizes are 16 apart for depth 4: 572 - 16 = 556.
  CHECK(g.output_size(556) == 372);
  CHECK(g.valid_input_at_least(1) == 188);  // the smallest: bottom size 1... 188 -> 4
  CHECK(g.output_size(188) == 4);
}

TEST_CASE("Invalid tile sizes are refused with the nearest valid ones", "[geometry][errors]") {
  UNetGeometry g;
  CHECK_THROWS_AS(g.require_valid_input(570), ShapeError);
  CHECK_THROWS_WITH(g.require_valid_input(570), Catch::Contains("556") && Catch::Contains("572"));
  CHECK_THROWS_WITH(g.require_valid_input(100), Catch::Contains("188"));
  CHECK_NOTHROW(g.require_valid_input(572));
}

TEST_CASE("Same padding keeps the size and needs divisibility by 2^depth", "[geometry]") {
  UNetGeometry g;
  g.padding = Padding::Same;
  CHECK(g.output_size(256) == 256);
  CHECK(g.output_size(250) == -1);
  CHECK(g.valid_input_at_least(250) == 256);
  CHECK(g.context_border() == 0);
  g.depth = 2;
  g.padding = Padding::Valid;
  CHECK(g.output_size(44) == 4);  // 44->40->20->16->8->4->8->4... : 40/2=20,16/2=8,4, up 8-4=4, 8-4=4
}
