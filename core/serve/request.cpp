#include "serve/request.h"

#include "util/error.h"
#include "util/strings.h"

#include <kbuild/digest.hpp>
#include <kbuild/types.hpp>

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <vector>

namespace kbuild {
namespace {

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_lower_alnum(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'z');
}
bool is_alnum(char c) {
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

bool all_of(std::string_view text, bool (*allowed)(char)) {
    return std::all_of(text.begin(), text.end(), allowed);
}

// A value as an error message may show it: short, and with anything unprintable escaped.
std::string shown(std::string_view value) {
    std::string out = "'";
    for (size_t i = 0; i < value.size() && i < 48; ++i) {
        const auto c = static_cast<unsigned char>(value[i]);
        if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
            out += static_cast<char>(c);
        } else {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        }
    }
    return out + (value.size() > 48 ? "...'" : "'");
}

void check_build_type(std::string_view v) {
    if (v.empty() || v.size() > 64 || !is_lower_alnum(v[0]) ||
        !all_of(v, [](char c) { return is_lower_alnum(c) || c == '-'; }))
        throw Error("buildType: " + shown(v) + " is not a build type (a-z, 0-9 and '-', at most 64)");
}

void check_kernelrelease(std::string_view v) {
    const bool chars = all_of(v, [](char c) { return is_alnum(c) || c == '.' || c == '_' || c == '+' || c == '-'; });
    if (v.size() < 3 || v.size() > 128 || !is_digit(v[0]) || v.find('.') == std::string_view::npos || !chars ||
        v.find("..") != std::string_view::npos)
        throw Error("kernelrelease: " + shown(v) +
                    " is not a kernel release (uname -r: a digit first, then letters, digits, '.', '_', "
                    "'+', '-'; at most 128)");
}

// What `uname -v` carries after '#' up to its first '-' or space: "56", Ubuntu's "56~20.04.1"
// (a backport) or "10+cvm1". No '/' and no "..", so it stays one path part.
void check_kernelversion(std::string_view v) {
    const bool chars = all_of(v, [](char c) { return is_alnum(c) || c == '.' || c == '_' || c == '+' || c == '~'; });
    if (v.empty() || v.size() > 32 || !is_digit(v[0]) || !chars || v.find("..") != std::string_view::npos)
        throw Error("kernelversion: " + shown(v) +
                    " is not a kernel version (what uname -v says after '#': a digit first, then letters, "
                    "digits, '.', '_', '+', '~'; at most 32)");
}

void check_module_version(std::string_view v) {
    const bool chars = all_of(v, [](char c) { return is_alnum(c) || c == '.' || c == '_' || c == '+' || c == '-'; });
    if (v.empty() || v.size() > 64 || !is_alnum(v[0]) || !chars || v.find("..") != std::string_view::npos)
        throw Error("moduleVersion: " + shown(v) +
                    " is not a module version (letters, digits, '.', '_', '+', '-'; at most 64)");
}

void check_sha256(std::string_view v) {
    if (v.size() != 64 || !all_of(v, [](char c) { return is_digit(c) || (c >= 'a' && c <= 'f'); }))
        throw Error("configSha256: " + shown(v) + " is not a sha256 (64 lowercase hex digits)");
}

void check_module_name(std::string_view v) {
    const std::string_view suffix = ".ko";
    const bool ko =
        v.size() > suffix.size() && v.size() <= 64 + suffix.size() && v.substr(v.size() - suffix.size()) == suffix;
    if (!ko ||
        !all_of(v.substr(0, v.size() - suffix.size()), [](char c) { return is_alnum(c) || c == '_' || c == '-'; }))
        throw Error("name: " + shown(v) + " is not a module file name (<name>.ko)");
}

std::vector<std::string_view> split_slashes(std::string_view text) {
    std::vector<std::string_view> parts;
    for (size_t start = 0;;) {
        const size_t slash = text.find('/', start);
        parts.push_back(text.substr(start, slash == std::string_view::npos ? slash : slash - start));
        if (slash == std::string_view::npos) return parts;
        start = slash + 1;
    }
}

}  // namespace

std::string ModuleRequest::key() const {
    return build_type + "/" + arch + "/" + module_version + "/" + kernelrelease + "/" + kernelversion + "/" +
           config_sha256;
}

void check_field(std::string_view field, std::string_view value) {
    if (field == "buildType") return check_build_type(value);
    if (field == "architecture") {
        if (canonical_arch(value).empty())
            throw Error("architecture: " + shown(value) + " is not x86_64 (amd64) or aarch64 (arm64)");
        return;
    }
    if (field == "kernelrelease") return check_kernelrelease(value);
    if (field == "kernelversion") return check_kernelversion(value);
    if (field == "moduleVersion") return check_module_version(value);
    if (field == "configSha256") return check_sha256(value);
    if (field == "name") return check_module_name(value);
    throw Error(std::string(field) + ": not a field");
}

bool valid_field(std::string_view field, std::string_view value) {
    try {
        check_field(field, value);
        return true;
    } catch (const Error&) {
        return false;
    }
}

std::string canonical_arch(std::string_view arch) {
    if (arch == "x86_64" || arch == "amd64") return "x86_64";
    if (arch == "aarch64" || arch == "arm64") return "aarch64";
    return {};
}

std::string plugin_arch(std::string_view canonical) {
    return canonical == "aarch64" ? "arm64" : "amd64";
}

namespace {

// A key's parts in order, then (in a path) the module's file name.
const char* const kPathFields[] = {"buildType",     "architecture", "moduleVersion", "kernelrelease",
                                   "kernelversion", "configSha256", "name"};
constexpr size_t kKeyParts = 6;

// The request of a key's parts, each of which has passed check_field.
ModuleRequest request_of(const std::vector<std::string_view>& parts) {
    ModuleRequest r;
    r.build_type = parts[0];
    r.arch = canonical_arch(parts[1]);
    r.module_version = parts[2];
    r.kernelrelease = parts[3];
    r.kernelversion = parts[4];
    r.config_sha256 = parts[5];
    return r;
}

}  // namespace

std::optional<ModuleRequest> parse_key(std::string_view key) {
    const std::vector<std::string_view> parts = split_slashes(key);
    if (parts.size() != kKeyParts) return std::nullopt;
    for (size_t i = 0; i < parts.size(); ++i)
        if (!valid_field(kPathFields[i], parts[i])) return std::nullopt;
    return request_of(parts);
}

std::variant<PostedModule, Refused> read_module_post(std::string_view body, const Servable& servable) {
    const Json doc = Json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object())
        return Refused{"body", doc.is_discarded() ? "body: not JSON" : "body: not a JSON object"};
    std::map<std::string, std::string> fields;
    for (const std::string name :
         {"buildType", "architecture", "kernelrelease", "kernelversion", "moduleVersion", "kernelConfigData"}) {
        const auto it = doc.find(name);
        std::string fallback;
        // As the Falco build service takes them: kernelversion is "1" unless given, and the
        // module version is the one module source's when there is only one.
        if (name == "kernelversion") fallback = "1";
        if (name == "moduleVersion" && servable.modules.size() == 1) fallback = servable.modules.begin()->first;
        if (it == doc.end() && !fallback.empty()) {
            fields[name] = fallback;
            continue;
        }
        if (it == doc.end() || !it->is_string())
            return Refused{name, name + (it == doc.end() ? ": missing" : ": not a string")};
        const std::string& value = fields[name] = it->get<std::string>();
        if (name == "kernelConfigData") continue;
        try {
            check_field(name, value);
            if (name == "buildType" && servable.check_build_type) servable.check_build_type(value);
            if (name == "moduleVersion" && !servable.modules.count(value)) {
                std::string known;
                for (const auto& [version, module] : servable.modules) known += (known.empty() ? "" : ", ") + version;
                throw Error("moduleVersion: no module source has version '" + value + "' (known: " + known + ")");
            }
        } catch (const Error& e) {
            return Refused{name, e.what()};
        }
    }
    const auto config = decode_base64(fields["kernelConfigData"]);
    if (!config || config->empty())
        return Refused{"kernelConfigData",
                       config ? "kernelConfigData: empty" : "kernelConfigData: not base64 (RFC 4648, padded)"};
    PostedModule posted;
    ModuleRequest& asked = posted.request;
    asked.build_type = fields["buildType"];
    asked.arch = canonical_arch(fields["architecture"]);
    asked.kernelrelease = fields["kernelrelease"];
    asked.kernelversion = fields["kernelversion"];
    asked.module_version = fields["moduleVersion"];
    asked.config_sha256 = sha256_text(*config);
    asked.config_md5 = md5_text(*config);
    posted.config = *config;
    return posted;
}

std::variant<ModulePath, Refused> read_module_path(std::string_view path) {
    const std::vector<std::string_view> parts = split_slashes(path);
    if (parts.size() != std::size(kPathFields))
        return Refused{"",
                       "no such path: a module is /v1/module/<buildType>/<arch>/<moduleVersion>/"
                       "<kernelrelease>/<kernelversion>/<config-sha256>/<name>.ko",
                       true};
    for (size_t i = 0; i < parts.size(); ++i) {
        try {
            check_field(kPathFields[i], parts[i]);
        } catch (const Error& e) {
            return Refused{kPathFields[i], e.what()};
        }
    }
    return ModulePath{request_of(parts), std::string(parts.back())};
}

}  // namespace kbuild
