// Digests of files, as lowercase hex: what plugins use for hash_config and what the host
// checks downloads with.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace kbuild {

// MD5 of a file's bytes (the probe-builder config hash). Throws kbuild::Error naming the file.
std::string md5_file(const std::string& path);

// SHA-256 of a file's bytes. Throws kbuild::Error naming the file.
std::string sha256_file(const std::string& path);

// A file's digest by the name a repository gives its algorithm ("sha256", "sha1", "sha512",
// "md5"; "sha" is sha1, as yum writes it). Throws kbuild::Error naming an unknown algorithm.
std::string file_digest(const std::string& path, const std::string& algorithm);

// A digest fed in pieces, as bytes arrive (a download is hashed without reading it back).
// `algorithm` as file_digest takes it. Throws kbuild::Error naming an unknown algorithm.
class DigestStream {
public:
    explicit DigestStream(const std::string& algorithm = "sha256");
    ~DigestStream();
    DigestStream(const DigestStream&) = delete;
    DigestStream& operator=(const DigestStream&) = delete;

    void update(const void* bytes, std::size_t count);
    std::string hex();  // once, at the end

private:
    struct Context;
    std::unique_ptr<Context> context_;
};

// SHA-256 and MD5 of bytes in memory (a kernel config a node sends).
std::string sha256_text(const std::string& bytes);
std::string md5_text(const std::string& bytes);

}  // namespace kbuild
