"""The local index (sqlite): md5 → object and link, path + stamp → md5, URL → object, folder IDs,
note stamps. It makes re-runs free and is shared safely by threads and processes.
"""
