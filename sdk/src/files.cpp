#include <kbuild/files.hpp>
#include <kbuild/types.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace kbuild {

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot read: " + std::strerror(errno));
    std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) throw Error(path + ": cannot read: " + std::strerror(errno));
    return bytes;
}

}  // namespace kbuild
