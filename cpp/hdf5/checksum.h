// Checksums used by the HDF5 format.
#pragma once
#include <cstddef>
#include <cstdint>

namespace weightio::hdf5 {

// Bob Jenkins' lookup3 "hashlittle" (HDF5 spec 3.0, "Checksums"): the checksum of every
// version-2+ metadata structure (superblock v2/v3, OHDR, OCHK, B-tree v2, fractal heap, ...).
uint32_t lookup3(const uint8_t* data, size_t length, uint32_t initval = 0);

// Fletcher-32 as the HDF5 fletcher32 filter computes it (16-bit big-endian words).
uint32_t fletcher32(const uint8_t* data, size_t length);

}  // namespace weightio::hdf5
