# jupyter_layenv kernel wrapper: source the env's etc/conda/activate.d scripts, as `conda activate`
# would, then become the kernel. The scripts come from LAYENV_ACTIVATE_SCRIPTS (one path per line),
# which the kernelspec sets; the kernel command is "$@" and is never re-parsed by the shell.
layenv_activate() {
    layenv_old_ifs=$IFS
    IFS='
'
    set -f
    for layenv_script in $LAYENV_ACTIVATE_SCRIPTS; do
        IFS=$layenv_old_ifs
        set +f
        if [ -r "$layenv_script" ]; then
            . "$layenv_script"
        fi
    done
    IFS=$layenv_old_ifs
    set +f
}
layenv_activate
unset LAYENV_ACTIVATE_SCRIPTS layenv_script layenv_old_ifs
unset -f layenv_activate
exec "$@"
