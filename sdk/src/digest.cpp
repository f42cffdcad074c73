#include <kbuild/digest.hpp>
#include <kbuild/types.hpp>

#include <openssl/evp.h>

#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace kbuild {
namespace {

std::string hex_of(const unsigned char* raw, unsigned int length) {
    static const char hex[] = "0123456789abcdef";
    std::string out(length * 2, '0');
    for (unsigned int i = 0; i < length; ++i) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    return out;
}

const EVP_MD* digest_named(const std::string& algorithm, const std::string& subject) {
    const EVP_MD* md = EVP_get_digestbyname(algorithm == "sha" ? "sha1" : algorithm.c_str());
    if (md == nullptr) throw Error(subject + ": unknown digest algorithm '" + algorithm + "'");
    return md;
}

std::string digest_file(const std::string& path, const std::string& algorithm) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(path + ": " + std::strerror(errno));
    DigestStream digest(algorithm);
    std::vector<unsigned char> buffer(1 << 20);
    for (;;) {
        const ssize_t n = ::read(fd, buffer.data(), buffer.size());
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            const int err = errno;
            ::close(fd);
            throw Error(path + ": " + std::strerror(err));
        }
        digest.update(buffer.data(), static_cast<size_t>(n));
    }
    ::close(fd);
    return digest.hex();
}

}  // namespace

struct DigestStream::Context {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), EVP_MD_CTX_free};
};

DigestStream::DigestStream(const std::string& algorithm) : context_(std::make_unique<Context>()) {
    const EVP_MD* md = digest_named(algorithm, "digest");
    if (!context_->ctx || EVP_DigestInit_ex(context_->ctx.get(), md, nullptr) != 1)
        throw Error(algorithm + ": OpenSSL cannot start a digest");
}

DigestStream::~DigestStream() = default;

void DigestStream::update(const void* bytes, std::size_t count) {
    EVP_DigestUpdate(context_->ctx.get(), bytes, count);
}

std::string DigestStream::hex() {
    unsigned char raw[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(context_->ctx.get(), raw, &length);
    return hex_of(raw, length);
}

std::string md5_file(const std::string& path) {
    return digest_file(path, "md5");
}

std::string sha256_file(const std::string& path) {
    return digest_file(path, "sha256");
}

std::string file_digest(const std::string& path, const std::string& algorithm) {
    digest_named(algorithm, path);  // an unknown algorithm is named with the file
    return digest_file(path, algorithm);
}

namespace {

std::string digest_text(const std::string& bytes, const EVP_MD* md) {
    unsigned char raw[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_Digest(bytes.data(), bytes.size(), raw, &length, md, nullptr);
    return hex_of(raw, length);
}

}  // namespace

std::string sha256_text(const std::string& bytes) {
    return digest_text(bytes, EVP_sha256());
}

std::string md5_text(const std::string& bytes) {
    return digest_text(bytes, EVP_md5());
}

}  // namespace kbuild
