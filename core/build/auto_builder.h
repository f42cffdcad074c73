// Which builder a run uses: --builder auto takes Docker when its daemon answers and has builder
// images, else the local (sandboxed) one, and says which and why.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

namespace kbuild {

class Builder;
class Docker;

// The daemon's socket: DOCKER_HOST=unix:///path, else the standard one.
std::filesystem::path docker_socket();

// `wanted`: auto | docker | local. `docker` receives the client when one is made (kept if set).
// `family`: the plugin's builder family (images are chosen among that family's).
std::unique_ptr<Builder> make_builder(const std::string& wanted, std::unique_ptr<Docker>& docker,
                                      const std::string& family);

}  // namespace kbuild
