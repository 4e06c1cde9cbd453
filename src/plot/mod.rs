//! Figures: labelled image grids and charts as PNG (plotters + image).
