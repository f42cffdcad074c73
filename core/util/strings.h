// Small text helpers the layers share.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kbuild {

// `text` without leading and trailing blanks (spaces, tabs, CR, LF).
std::string trim(std::string_view text);

// `text` as one line for a message: CR and LF become spaces, blanks at either end go.
std::string one_line(std::string text);

// Strict RFC 4648 base64 (padding required, no whitespace); nullopt when malformed.
std::optional<std::string> decode_base64(std::string_view text);

// The system's words for an errno value ("No such file or directory").
std::string errno_text(int code);

// The current UTC time as 2026-11-23T10:01:02Z.
std::string utc_now();

}  // namespace kbuild
