"""Print, as CMake `set()` commands, what the build needs to know about the torch it builds against.

`find_package(Torch)` fails for a CUDA build of torch whenever no full CUDA toolkit is installed, even
for a CPU-only extension, so the build asks torch itself (the same data torch.utils.cpp_extension uses).
Usage: python torch_config.py OUTPUT.cmake
"""

import sys

import torch
import torch.utils.cpp_extension as cpp_extension


def cmake_list(values):
    return ";".join(str(v).replace("\\", "/") for v in values)


def main(out_path: str) -> None:
    lib_dirs = cpp_extension.library_paths()
    lines = {
        "VK_TORCH_VERSION": torch.__version__,
        "VK_TORCH_INCLUDE_DIRS": cmake_list(cpp_extension.include_paths()),
        "VK_TORCH_LIBRARY_DIRS": cmake_list(lib_dirs),
        "VK_TORCH_CUDA_VERSION": torch.version.cuda or "",
        "VK_TORCH_CXX11_ABI": int(torch._C._GLIBCXX_USE_CXX11_ABI),
    }
    with open(out_path, "w") as f:
        for key, value in lines.items():
            f.write(f'set({key} "{value}")\n')


if __name__ == "__main__":
    main(sys.argv[1])
