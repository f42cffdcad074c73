// What a node sends the build service: the input read as a POST /v1/module body and as the
// path of a GET /v1/module/..., and every key a valid path names read back.
#include "fuzz_input.h"

#include "serve/request.h"

#include <kbuild/error.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace kbuild;
    static const Servable servable{[](const std::string& type) {
                                       if (type != "debian" && type != "ubuntu-generic")
                                           throw Error("buildType: unknown '" + type + "'");
                                   },
                                   {{"1.2.3", "probedrv"}}};
    const std::string_view input = fuzz::text(data, size);
    const auto post = read_module_post(input, servable);
    if (const auto* posted = std::get_if<PostedModule>(&post)) {
        // An accepted request names a key that reads back as itself.
        const auto again = parse_key(posted->request.key());
        if (!again || again->key() != posted->request.key()) __builtin_trap();
    }
    const auto get = read_module_path(input);
    if (const auto* path = std::get_if<ModulePath>(&get)) {
        if (!valid_field("name", path->name) || !parse_key(path->request.key())) __builtin_trap();
    }
    return 0;
}
