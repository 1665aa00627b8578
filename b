lab hard-race is up (1 operation); remove it with `nslab destroy hard-race`
