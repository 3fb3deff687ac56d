"""Words of the console's pages, one module per group of pages (merged by ``gateway.console.i18n``)."""
