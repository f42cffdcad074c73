// flock() on a lock file beside what it guards, held for the object's lifetime: one holder at a
// time across threads (each holder opens its own descriptor) and across kbuild processes
// sharing a cache. The kernel drops the lock when a holder dies, so a killed run never blocks
// the next.
#pragma once

#include "util/error.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

namespace kbuild {

class FileLock {
public:
    // Blocks until the lock on `lock_path` (created when missing) is held. Throws Error
    // beginning with `what` when it cannot be.
    FileLock(const std::filesystem::path& lock_path, const std::string& what) {
        fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd_ < 0) throw Error(what + ": cannot open " + lock_path.string() + ": " + std::strerror(errno));
        while (::flock(fd_, LOCK_EX) != 0) {
            if (errno == EINTR) continue;
            const int error = errno;
            ::close(fd_);
            throw Error(what + ": cannot lock " + lock_path.string() + ": " + std::strerror(error));
        }
    }
    ~FileLock() { ::close(fd_); }
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;

private:
    int fd_ = -1;
};

}  // namespace kbuild
