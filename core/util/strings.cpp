#include "util/strings.h"

#include <algorithm>
#include <system_error>

namespace kbuild {

std::string trim(std::string_view text) {
    constexpr std::string_view blanks = " \t\r\n";
    const std::size_t first = text.find_first_not_of(blanks);
    if (first == std::string_view::npos) return {};
    return std::string(text.substr(first, text.find_last_not_of(blanks) - first + 1));
}

std::string one_line(std::string text) {
    std::replace(text.begin(), text.end(), '\n', ' ');
    std::replace(text.begin(), text.end(), '\r', ' ');
    return trim(text);
}

std::string errno_text(int code) {
    return std::generic_category().message(code);
}

}  // namespace kbuild
