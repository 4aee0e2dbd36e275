"""Training and deployment methods compared in the paper (DESIGN section 5): one spec module
each (`registry.MethodSpec`), whose training and deployment code is the module of the same name
under `tsblib.execution`."""
