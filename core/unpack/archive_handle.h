// What the code reading and writing archives with libarchive shares (archive.cpp extracts,
// bundle.cpp writes and reads bundles): owning handles, the compressions read, one-line errors.
#pragma once

#include <archive.h>

#include <memory>
#include <string>

namespace kbuild {

struct ReadArchiveFree {
    void operator()(struct archive* a) const { archive_read_free(a); }
};
struct WriteArchiveFree {
    void operator()(struct archive* a) const { archive_write_free(a); }
};
using ReadArchive = std::unique_ptr<struct archive, ReadArchiveFree>;
using WriteArchive = std::unique_ptr<struct archive, WriteArchiveFree>;

// archive_read_new(); throws kbuild::Error when out of memory.
ReadArchive new_reader();

// Only the filters built into libarchive: one that fell back to an external program would be a
// subprocess, and Debian's libarchive has all of these in process.
void support_compressions(struct archive* a);

// libarchive's last error on one line.
std::string archive_message(struct archive* a);

}  // namespace kbuild
