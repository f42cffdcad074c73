// A file descriptor owned by one object: closed when it goes out of scope, moved (never
// copied), so no path out of a function, an exception's among them, leaks it.
#pragma once

#include <unistd.h>

#include <utility>

namespace kbuild {

class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    ~UniqueFd() { reset(); }
    UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) reset(std::exchange(other.fd_, -1));
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    // Closes what it holds (if anything) and takes `fd`.
    void reset(int fd = -1) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }
    // Gives the descriptor up without closing it.
    int release() { return std::exchange(fd_, -1); }

private:
    int fd_ = -1;
};

// A pipe whose two ends are closed on exec (a child gets only the end dup2'd onto its stdin,
// stdout or stderr). Throws kbuild::Error when the system has no descriptors left.
struct Pipe {
    UniqueFd read, write;
    Pipe();
};

}  // namespace kbuild
