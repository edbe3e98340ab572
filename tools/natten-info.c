/* natten-info - what this build of libnatten contains and what can run here. */
#include <natten.h>
#include <stdio.h>

static const char *device_name(DLDeviceType t)
{
    return t == kDLCPU ? "cpu" : t == kDLCUDA ? "cuda" : t == kDLROCM ? "rocm" : "?";
}

int main(void)
{
    int n = natten_backend_count();
    printf("%s\n\n", natten_version_string());
    printf("%-12s %-6s %-10s %s\n", "backend", "device", "available", "description / reason");
    for (int i = 0; i < n; i++) {
        natten_backend_info info;
        if (natten_backend_get_info(i, &info) != NATTEN_SUCCESS) {
            fprintf(stderr, "natten-info: %s\n", natten_last_error());
            return 1;
        }
        printf("%-12s %-6s %-10s %s\n", info.name, device_name(info.device_type),
               info.available ? "yes" : "no", info.available ? info.description : info.reason);
    }
    return 0;
}
