// Opens a TIFF stack or an AVI with ImageJ 1.x's own readers (no display needed) and
// prints the calibration and, for each frame, the sum of its pixels and the pixel at
// (x=7, y=3). Used by tests/test_export_imagej.py; run as
//   java -Djava.awt.headless=true -cp /usr/share/java/ij.jar OpenCheck.java FILE
import ij.ImagePlus;
import ij.ImageStack;
import ij.io.Opener;
import ij.plugin.AVI_Reader;
import ij.measure.Calibration;

public class OpenCheck {
    public static void main(String[] args) {
        String path = args[0];
        ImagePlus imp;
        if (path.endsWith(".avi")) {
            AVI_Reader reader = new AVI_Reader();
            ImageStack stack = reader.makeStack(path, 1, 0, false, false, false);
            if (stack == null) { System.out.println("ERROR " + reader.getErrorText()); System.exit(1); }
            imp = new ImagePlus(path, stack);
        } else {
            imp = new Opener().openImage(path);
        }
        if (imp == null) { System.out.println("ERROR cannot open"); System.exit(1); }
        Calibration cal = imp.getCalibration();
        StringBuilder sb = new StringBuilder();
        sb.append("width=").append(imp.getWidth()).append(" height=").append(imp.getHeight())
          .append(" slices=").append(imp.getStackSize()).append(" bitdepth=").append(imp.getBitDepth())
          .append(" pixelwidth=").append(cal.pixelWidth).append(" unit=").append(cal.getUnit())
          .append(" frameinterval=").append(cal.frameInterval).append(" frames=").append(imp.getNFrames());
        System.out.println(sb);
        ImageStack st = imp.getStack();
        for (int k = 1; k <= st.getSize(); k++) {
            long sum = 0;
            ij.process.ImageProcessor ip = st.getProcessor(k);
            for (int y = 0; y < imp.getHeight(); y++) for (int x = 0; x < imp.getWidth(); x++) sum += (long) ip.getPixelValue(x, y);
            System.out.println("frame " + (k - 1) + " sum=" + sum + " p37=" + (int) ip.getPixelValue(7, 3));
        }
    }
}
