/*
 * A small Tika REST server speaking the subset of Apache Tika Server's HTTP API that learnflow
 * (and the Python `tika` client) use, built on the real Tika 3.3.1 parsers
 * (org.apache.tika:tika-parsers-standard-package + tika-core from Maven Central).
 *
 * Why it exists: Maven Central, as reachable here, does not serve
 * org.apache.tika:tika-server-standard:3.3.1 nor org.apache.tika:tika-server-core:3.3.1
 * ("Could not find artifact"), while the parsers package resolves. The extraction is the real
 * Tika (AutoDetectParser, RecursiveParserWrapper); only the JAX-RS shell is replaced by the JDK's
 * com.sun.net.httpserver. Built and started by learnflow/harness/tika.py.
 *
 * Endpoints (same paths, verbs and JSON shape as tika-server):
 *   GET  /tika                  -> "This is Tika Server (Apache Tika 3.3.1). Please PUT\n"
 *   GET  /version               -> "Apache Tika 3.3.1"
 *   PUT  /tika                  -> body text (text/plain); Accept: text/html|text/xml -> XHTML
 *   PUT  /rmeta[/text|xml|html|ignore] -> JSON list of metadata maps incl. "X-TIKA:content"
 *   PUT  /meta                  -> JSON metadata map
 *   PUT  /detect/stream         -> detected media type
 * (POST is accepted wherever PUT is.) Request headers honoured: Content-Disposition filename,
 * Content-Type (hint), X-Tika-OCRskipOcr (true|false), X-Tika-PDFOcrStrategy
 * (no_ocr|auto|ocr_only|ocr_and_text_extraction).
 *
 * Usage: java -cp 'classes:lib/*' TikaRestServer -h 127.0.0.1 -p 9998 [--ocr] [--threads N]
 * OCR (tesseract) is off by default (deterministic, fast); --ocr turns the default on.
 */

import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.tika.Tika;
import org.apache.tika.config.TikaConfig;
import org.apache.tika.exception.EncryptedDocumentException;
import org.apache.tika.exception.TikaException;
import org.apache.tika.io.TikaInputStream;
import org.apache.tika.metadata.Metadata;
import org.apache.tika.metadata.TikaCoreProperties;
import org.apache.tika.mime.MediaType;
import org.apache.tika.parser.AutoDetectParser;
import org.apache.tika.parser.ParseContext;
import org.apache.tika.parser.Parser;
import org.apache.tika.parser.RecursiveParserWrapper;
import org.apache.tika.parser.ocr.TesseractOCRConfig;
import org.apache.tika.parser.pdf.PDFParserConfig;
import org.apache.tika.sax.BasicContentHandlerFactory;
import org.apache.tika.sax.BodyContentHandler;
import org.apache.tika.sax.RecursiveParserWrapperHandler;
import org.apache.tika.sax.ToXMLContentHandler;
import org.xml.sax.ContentHandler;
import org.xml.sax.helpers.DefaultHandler;

public final class TikaRestServer {
    private static final Pattern FILENAME =
            Pattern.compile("filename\\*?=(?:UTF-8'')?\"?([^\";]+)\"?", Pattern.CASE_INSENSITIVE);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String version = new Tika().toString();
    private final TikaConfig config = TikaConfig.getDefaultConfig();
    private final Parser parser = new AutoDetectParser(config);
    private final boolean ocrByDefault;

    private TikaRestServer(boolean ocrByDefault) {
        this.ocrByDefault = ocrByDefault;
    }

    public static void main(String[] args) throws Exception {
        String host = "127.0.0.1";
        int port = 9998;
        int threads = Math.max(2, Runtime.getRuntime().availableProcessors());
        boolean ocr = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "-h", "--host" -> host = args[++i];
                case "-p", "--port" -> port = Integer.parseInt(args[++i]);
                case "--threads" -> threads = Integer.parseInt(args[++i]);
                case "--ocr" -> ocr = true;
                default -> {
                    System.err.println("unknown argument: " + args[i]);
                    System.exit(2);
                }
            }
        }
        TikaRestServer app = new TikaRestServer(ocr);
        HttpServer server = HttpServer.create(new InetSocketAddress(host, port), 64);
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        server.setExecutor(pool);
        server.createContext("/", app::handle);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.stop(0);
            pool.shutdownNow();
        }));
        server.start();
        System.out.println("TikaRestServer (" + app.version + ") listening on http://" + host + ":"
                + server.getAddress().getPort());
        System.out.flush();
    }

    private void handle(HttpExchange ex) throws IOException {
        try (ex) {
            String method = ex.getRequestMethod().toUpperCase(Locale.ROOT);
            String path = ex.getRequestURI().getPath();
            if (path.length() > 1 && path.endsWith("/")) {
                path = path.substring(0, path.length() - 1);
            }
            boolean put = method.equals("PUT") || method.equals("POST");
            try {
                if (method.equals("GET") && path.equals("/tika")) {
                    send(ex, 200, "text/plain", "This is Tika Server (" + version + "). Please PUT\n");
                } else if (method.equals("GET") && path.equals("/version")) {
                    send(ex, 200, "text/plain", version);
                } else if (put && path.equals("/tika")) {
                    tika(ex);
                } else if (put && (path.equals("/rmeta") || path.startsWith("/rmeta/"))) {
                    rmeta(ex, path.equals("/rmeta") ? "xml" : path.substring("/rmeta/".length()));
                } else if (put && path.equals("/meta")) {
                    meta(ex);
                } else if (put && path.equals("/detect/stream")) {
                    detect(ex);
                } else {
                    send(ex, 404, "text/plain", "not supported by TikaRestServer: " + method + " " + path + "\n");
                }
            } catch (EncryptedDocumentException e) {
                send(ex, 422, "text/plain", stackTrace(e));
            } catch (TikaException e) {
                send(ex, 422, "text/plain", stackTrace(e));
            } catch (Exception | StackOverflowError e) {
                send(ex, 500, "text/plain", stackTrace(e));
            }
        }
    }

    private Metadata requestMetadata(HttpExchange ex) {
        Metadata md = new Metadata();
        String disp = ex.getRequestHeaders().getFirst("Content-Disposition");
        if (disp != null) {
            Matcher m = FILENAME.matcher(disp);
            if (m.find()) {
                md.set(TikaCoreProperties.RESOURCE_NAME_KEY, m.group(1));
            }
        }
        String ct = ex.getRequestHeaders().getFirst("Content-Type");
        if (ct != null && !ct.isBlank() && !ct.startsWith("application/octet-stream")
                && !ct.startsWith("application/x-www-form-urlencoded")) {
            md.set(Metadata.CONTENT_TYPE, ct);
        }
        return md;
    }

    private ParseContext context(HttpExchange ex) {
        boolean skipOcr = !ocrByDefault;
        String skipHeader = ex.getRequestHeaders().getFirst("X-Tika-OCRskipOcr");
        if (skipHeader != null) {
            skipOcr = Boolean.parseBoolean(skipHeader.trim());
        }
        TesseractOCRConfig ocr = new TesseractOCRConfig();
        ocr.setSkipOcr(skipOcr);
        PDFParserConfig pdf = new PDFParserConfig();
        String strategy = ex.getRequestHeaders().getFirst("X-Tika-PDFOcrStrategy");
        if (strategy != null) {
            pdf.setOcrStrategy(strategy.trim().toLowerCase(Locale.ROOT));
        } else if (skipOcr) {
            pdf.setOcrStrategy(PDFParserConfig.OCR_STRATEGY.NO_OCR);
        }
        ParseContext ctx = new ParseContext();
        ctx.set(Parser.class, parser);
        ctx.set(TesseractOCRConfig.class, ocr);
        ctx.set(PDFParserConfig.class, pdf);
        return ctx;
    }

    private void tika(HttpExchange ex) throws Exception {
        String accept = String.valueOf(ex.getRequestHeaders().getFirst("Accept"));
        boolean xhtml = accept.contains("text/html") || accept.contains("xml");
        ContentHandler handler = xhtml ? new ToXMLContentHandler() : new BodyContentHandler(-1);
        try (InputStream in = TikaInputStream.get(ex.getRequestBody())) {
            parser.parse(in, handler, requestMetadata(ex), context(ex));
        }
        send(ex, 200, xhtml ? "text/html" : "text/plain", handler.toString());
    }

    private void rmeta(HttpExchange ex, String kind) throws Exception {
        BasicContentHandlerFactory.HANDLER_TYPE type = switch (kind) {
            case "text" -> BasicContentHandlerFactory.HANDLER_TYPE.TEXT;
            case "html" -> BasicContentHandlerFactory.HANDLER_TYPE.HTML;
            case "ignore" -> BasicContentHandlerFactory.HANDLER_TYPE.IGNORE;
            case "xml" -> BasicContentHandlerFactory.HANDLER_TYPE.XML;
            default -> throw new IllegalArgumentException("unknown rmeta handler: " + kind);
        };
        RecursiveParserWrapper wrapper = new RecursiveParserWrapper(parser);
        RecursiveParserWrapperHandler handler =
                new RecursiveParserWrapperHandler(new BasicContentHandlerFactory(type, -1), -1);
        Metadata md = requestMetadata(ex);
        try (InputStream in = TikaInputStream.get(ex.getRequestBody())) {
            wrapper.parse(in, handler, md, context(ex));
        } catch (Exception e) {
            // tika-server reports a container failure inside the metadata list, with status 200
            List<Metadata> got = handler.getMetadataList();
            Metadata container = got.isEmpty() ? md : got.get(0);
            container.set(TikaCoreProperties.CONTAINER_EXCEPTION, stackTrace(e));
            if (got.isEmpty()) {
                sendJson(ex, List.of(toMap(container)));
                return;
            }
        }
        List<Map<String, Object>> out = new ArrayList<>();
        for (Metadata m : handler.getMetadataList()) {
            out.add(toMap(m));
        }
        sendJson(ex, out);
    }

    private void meta(HttpExchange ex) throws Exception {
        Metadata md = requestMetadata(ex);
        try (InputStream in = TikaInputStream.get(ex.getRequestBody())) {
            parser.parse(in, new DefaultHandler(), md, context(ex));
        }
        sendJson(ex, toMap(md));
    }

    private void detect(HttpExchange ex) throws Exception {
        Metadata md = requestMetadata(ex);
        MediaType type;
        try (TikaInputStream in = TikaInputStream.get(ex.getRequestBody())) {
            type = config.getDetector().detect(in, md);
        }
        send(ex, 200, "text/plain", type.toString());
    }

    private static Map<String, Object> toMap(Metadata md) {
        Map<String, Object> map = new LinkedHashMap<>();
        String[] names = md.names();
        java.util.Arrays.sort(names);
        for (String name : names) {
            String[] values = md.getValues(name);
            map.put(name, values.length == 1 ? values[0] : values);
        }
        return map;
    }

    private static void sendJson(HttpExchange ex, Object body) throws IOException {
        send(ex, 200, "application/json", JSON.writeValueAsString(body));
    }

    private static void send(HttpExchange ex, int status, String type, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", type + "; charset=UTF-8");
        ex.sendResponseHeaders(status, bytes.length == 0 ? -1 : bytes.length);
        if (bytes.length > 0) {
            try (OutputStream os = ex.getResponseBody()) {
                os.write(bytes);
            }
        }
    }

    private static String stackTrace(Throwable t) {
        StringWriter sw = new StringWriter();
        t.printStackTrace(new PrintWriter(sw));
        return sw.toString();
    }
}
