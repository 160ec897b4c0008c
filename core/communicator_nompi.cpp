// core/communicator_nompi.cpp — the MPI layer of a build without MPI (CMake UNET_MPI=OFF, or AUTO
// on a machine without it): a job of several ranks is refused, so that N copies of a program do
// not each run the whole job.
#include "core/communicator.h"

namespace unet {

std::unique_ptr<Communicator> make_mpi_world(const JobEnvironment& env) {
  UNET_THROW(DistributedError, "this process was started as rank ", env.rank, " of ", env.size, " (", env.launcher,
             ") but this build of unetcore has no MPI: rebuild with MPI (Debian: apt-get install libopenmpi-dev, "
             "then cmake -DUNET_MPI=ON), or run a single process");
}

}  // namespace unet
