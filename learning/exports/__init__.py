"""Research exports: versioned training sets with provenance.

Pure modules (no Django): ``config`` (the choices), ``splits`` (seeded splits, patch grids,
pseudonyms), ``archive`` (deterministic zip, PNG, npz), ``coco`` (RLE, polygons, COCO parts on
disk), ``writer`` (regions into patches and files), ``readme``. Django side: ``gather`` (a region
read once from the slide and the consensus), ``provenance`` (manifest rows), ``services``
(request, claim, build, publish), ``selectors`` (reads filtered by role), ``tasks``, ``api``,
``pages``.
"""
