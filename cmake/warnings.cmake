# Project-wide warning flags; third-party headers come in as system includes.
add_compile_options(-Wall -Wextra -Wno-unused-parameter)
